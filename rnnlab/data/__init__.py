"""Reading users' data: text, CSV series, IDX/npz sequences, with errors that say where the problem is."""
