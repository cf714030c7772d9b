int sundial_shim_placeholder(void);
