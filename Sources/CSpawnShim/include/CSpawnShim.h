// glibc's GNU extensions that Swift's Glibc module leaves out (they need _GNU_SOURCE).
#ifndef CSPAWNSHIM_H
#define CSPAWNSHIM_H
#include <spawn.h>

/// pipe2(fds, O_CLOEXEC): a pipe whose ends no other spawn can inherit, in one step.
int cspawn_pipe_cloexec(int fds[2]);

/// posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor from `lowest` up.
int cspawn_add_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
