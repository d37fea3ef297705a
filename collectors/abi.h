// C++ side of the kernel/user ABI: includes the shared C header and pins every
// layout the BPF programs write, so a drift fails the build, not the decode.
#pragma once

#include <cstddef>

#include "vigil/abi.h"

static_assert(sizeof(vigil_event_header) == 56);
static_assert(offsetof(vigil_event_header, type) == 16);
static_assert(offsetof(vigil_event_header, comm) == 40);
static_assert(sizeof(vigil_exec_event) == 56 + 8 + VIGIL_FILENAME_LEN);
static_assert(sizeof(vigil_fork_event) == 64);
static_assert(sizeof(vigil_exit_event) == 64);
static_assert(sizeof(vigil_conn_tuple) == 40);
static_assert(offsetof(vigil_conn_tuple, lport) == 32);
static_assert(offsetof(vigil_conn_tuple, family) == 36);
static_assert(sizeof(vigil_conn_event) == 56 + 8 + 40 + 8 + 16);
static_assert(offsetof(vigil_conn_event, tuple) == 64);
static_assert(offsetof(vigil_conn_event, bytes_sent) == 112);
static_assert(sizeof(vigil_conn_key) == 8);
static_assert(sizeof(vigil_conn_value) == 96);
static_assert(sizeof(vigil_tls_args) == 40);
static_assert(sizeof(vigil_ssl_key) == 16);
static_assert(offsetof(vigil_data_event, data) == 56 + 8 + 8 + 4 + 4 + 4 + 4);
static_assert(sizeof(vigil_io_args) == 24);
static_assert(sizeof(vigil_pid_fds) == 4 * VIGIL_PID_FD_SLOTS + 8);
