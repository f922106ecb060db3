// Compiled to nothing in a build without MPI (mpi_world.cpp says so at run time).
#if LLAMA3_HAVE_MPI
#include "dist/mpi_communicator.h"

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "dist/mpi_error.h"

namespace llama3::dist {
namespace {

// Short enough that a barrier returns soon after the last rank arrives, long enough that a
// waiting rank leaves the core to the ranks it waits for (meshes may oversubscribe cores).
constexpr auto kBarrierPoll = std::chrono::microseconds(100);

// A derived datatype, freed however the scope ends.
class Datatype {
 public:
  Datatype() = default;
  ~Datatype() {
    if (type_ != MPI_DATATYPE_NULL) MPI_Type_free(&type_);
  }
  Datatype(const Datatype&) = delete;
  Datatype& operator=(const Datatype&) = delete;
  MPI_Datatype* out() { return &type_; }
  MPI_Datatype get() const { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

// `bytes` contiguous bytes whose extent is `stride`: in an Allgather with one of these per
// rank, rank r's bytes land r * stride further on.
void make_strided_bytes(size_t bytes, size_t stride, Datatype& out) {
  Datatype contiguous;
  check_mpi(MPI_Type_contiguous(static_cast<int>(bytes), MPI_BYTE, contiguous.out()), "MPI_Type_contiguous");
  check_mpi(MPI_Type_create_resized(contiguous.get(), 0, static_cast<MPI_Aint>(stride), out.out()),
            "MPI_Type_create_resized");
  check_mpi(MPI_Type_commit(out.out()), "MPI_Type_commit");
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, MpiLimits limits) : comm_(comm), limits_(limits) {
  check(limits_.max_elements_per_call >= 1 && limits_.max_elements_per_call <= INT_MAX,
        "MPI: max_elements_per_call must be 1..{}", INT_MAX);
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (open_barrier_ != MPI_REQUEST_NULL) {
    // Still open means a rank never came; MPI forbids freeing it, so it is left to the job's end.
    int done = 0;
    MPI_Test(&open_barrier_, &done, MPI_STATUS_IGNORE);
  }
  MPI_Comm_free(&comm_);  // deferred by MPI until pending operations on it complete
}

void MpiCommunicator::all_reduce_sum(std::span<float> data) {
  note_collective();
  // Every rank has the same length, so every rank makes the same sequence of calls.
  for (size_t done = 0; done < data.size();) {
    const size_t count = std::min(data.size() - done, limits_.max_elements_per_call);
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data.data() + done, static_cast<int>(count), MPI_FLOAT, MPI_SUM, comm_),
              "MPI_Allreduce");
    done += count;
  }
}

namespace {

// MPI_Op for bf16 values (as uint16): a + b in fp32, rounded to bf16.
void add_bf16(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
}

}  // namespace

void MpiCommunicator::all_reduce_sum_bf16(std::span<float> data) {
  if (size_ == 1 || data.empty()) return;
  note_collective();
  // A reduce-scatter then an all-gather, both of bf16: each slice is reduced once, on the rank
  // that owns it, and that rank's bits are what every rank receives.
  const size_t ranks = static_cast<size_t>(size_);
  const size_t slice = (data.size() + ranks - 1) / ranks;
  check(slice <= limits_.max_elements_per_call, "all_reduce_sum_bf16: {} values per rank exceed one call", slice);
  std::vector<uint16_t> mine(slice * ranks, 0), reduced(slice), all(slice * ranks);
  std::transform(data.begin(), data.end(), mine.begin(), f32_to_bf16);
  MPI_Op op = MPI_OP_NULL;
  check_mpi(MPI_Op_create(add_bf16, /*commute=*/1, &op), "MPI_Op_create");
  const int scattered = MPI_Reduce_scatter_block(mine.data(), reduced.data(), static_cast<int>(slice), MPI_UINT16_T,
                                                 op, comm_);
  MPI_Op_free(&op);
  check_mpi(scattered, "MPI_Reduce_scatter_block");
  check_mpi(MPI_Allgather(reduced.data(), static_cast<int>(slice), MPI_UINT16_T, all.data(), static_cast<int>(slice),
                          MPI_UINT16_T, comm_),
            "MPI_Allgather");
  std::transform(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(data.size()), data.begin(), bf16_to_f32);
}

void MpiCommunicator::all_gather(std::span<const std::byte> mine, std::span<std::byte> all) {
  check(all.size() / size_ == mine.size() && all.size() % size_ == 0,
        "all_gather: {} bytes per rank do not fill {} bytes over {} ranks", mine.size(), all.size(), size_);
  note_collective();
  const size_t n = mine.size();
  if (n <= limits_.max_elements_per_call) {
    check_mpi(MPI_Allgather(mine.data(), static_cast<int>(n), MPI_BYTE, all.data(), static_cast<int>(n), MPI_BYTE, comm_),
              "MPI_Allgather");
    return;
  }
  // Piece by piece: bytes [offset, offset + count) of every rank, each to its rank's block.
  for (size_t offset = 0; offset < n;) {
    const size_t count = std::min(n - offset, limits_.max_elements_per_call);
    Datatype piece_in_block;
    make_strided_bytes(count, n, piece_in_block);
    check_mpi(MPI_Allgather(mine.data() + offset, static_cast<int>(count), MPI_BYTE, all.data() + offset, 1,
                            piece_in_block.get(), comm_),
              "MPI_Allgather");
    offset += count;
  }
}

void MpiCommunicator::broadcast(std::span<std::byte> data, int root) {
  check(root >= 0 && root < size_, "broadcast: root {} is not a rank of a group of {}", root, size_);
  note_collective();
  for (size_t done = 0; done < data.size();) {
    const size_t count = std::min(data.size() - done, limits_.max_elements_per_call);
    check_mpi(MPI_Bcast(data.data() + done, static_cast<int>(count), MPI_BYTE, root, comm_), "MPI_Bcast");
    done += count;
  }
}

void MpiCommunicator::barrier(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (open_barrier_ != MPI_REQUEST_NULL) {
    const bool retry = !collective_since_open_barrier_;
    wait_for_open_barrier(deadline, timeout);
    if (retry) return;
  }
  check_mpi(MPI_Ibarrier(comm_, &open_barrier_), "MPI_Ibarrier");
  collective_since_open_barrier_ = false;
  wait_for_open_barrier(deadline, timeout);
}

void MpiCommunicator::wait_for_open_barrier(std::chrono::steady_clock::time_point deadline,
                                            std::chrono::milliseconds timeout) {
  for (;;) {
    int done = 0;
    check_mpi(MPI_Test(&open_barrier_, &done, MPI_STATUS_IGNORE), "MPI_Test (barrier)");
    if (done) return;  // MPI_Test has reset open_barrier_ to MPI_REQUEST_NULL
    check(std::chrono::steady_clock::now() < deadline,
          "barrier timed out on rank {} of {}: other rank(s) did not reach the barrier within {} ms "
          "(a rank died, hangs, or is out of step)",
          rank_, size_, timeout.count());
    std::this_thread::sleep_for(kBarrierPoll);
  }
}

}  // namespace llama3::dist
#endif
