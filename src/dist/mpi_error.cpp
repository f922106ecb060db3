// Compiled to nothing in a build without MPI (mpi_world.cpp says so at run time).
#if LLAMA3_HAVE_MPI
#include "dist/mpi_error.h"

#include "core/error.h"

namespace llama3::dist {

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return fmt::format("MPI error code {}", code);
  return std::string(text, static_cast<size_t>(length));
}

void check_mpi(int code, std::string_view call) {
  if (code != MPI_SUCCESS) fail("MPI {} failed: {}", call, mpi_error_text(code));
}

}  // namespace llama3::dist
#endif
