int sundial_shim_placeholder(void) { return 0; }
