#include <malloc.h>
#include "sundial_heap.h"

int sundial_trim_heap(void) { return malloc_trim(0); }
