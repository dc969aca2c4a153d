#include "CPNGShim.h"
#include <png.h>
int cpngshim_version(void) { return (int)png_access_version_number(); }
