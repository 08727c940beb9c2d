// What the MPI implementation files share (never included by code built without MPI).
#pragma once
#include <mpi.h>

#include <string>

#include "moe/dist.h"

namespace moe::dist {

struct CommHandle {
    MPI_Comm comm = MPI_COMM_NULL;
    bool owned = false;  // created by split(): freed with the last Comm that refers to it
    ~CommHandle();
};

// Throws "[op] MPI_<call> failed: <MPI's message>" unless rc == MPI_SUCCESS. MPI's default
// handler aborts on error; the communicators here return codes instead (MPI_ERRORS_RETURN), so
// a failure becomes a moe::Error like every other one.
void mpi_check(int rc, const char* op, const char* call);

// The MPI_Comm of c; throws for a default-constructed Comm (use Comm::world() or split()).
MPI_Comm mpi_comm(const Comm& c);

}  // namespace moe::dist
