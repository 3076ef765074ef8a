"""distdlrun: the mpirun launcher for distdl (installed as `distdl_launch`)."""
