// Placeholder: the PNG bridge (setjmp-safe libpng calls) lives here.
#ifndef CPNGSHIM_H
#define CPNGSHIM_H
int cpngshim_version(void);
#endif
