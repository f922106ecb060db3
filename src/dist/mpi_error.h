#pragma once
// Internal to dist/: MPI error codes as llama3::Error. Only for builds with MPI.
#include <mpi.h>

#include <string>
#include <string_view>

namespace llama3::dist {

// MPI_Error_string of `code`.
std::string mpi_error_text(int code);

// Throws llama3::Error "MPI <call> failed: <MPI's text>" unless code is MPI_SUCCESS.
void check_mpi(int code, std::string_view call);

}  // namespace llama3::dist
