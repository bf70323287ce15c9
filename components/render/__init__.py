"""Pure render functions for the files the program places into containers: no engine, no I/O."""
