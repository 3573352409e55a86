/*
 * Socket addresses and ancillary data between Python objects and the C
 * structs the kernel reads.  Shapes follow the socket module:
 *   AF_INET  -> (host, port)                      host numeric
 *   AF_INET6 -> (host, port[, flowinfo[, scope_id]])
 *   AF_UNIX  -> str or bytes path; a leading NUL byte ('\0name') is an
 *               abstract name; an unnamed socket gives ''.
 * No name resolution happens here: a submit call must not block on DNS, so
 * hosts must be numeric ('' and 'localhost' are accepted as conveniences).
 */
#ifndef RINGIO_SOCKADDR_H
#define RINGIO_SOCKADDR_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/socket.h>

/* Address family of a socket fd (SO_DOMAIN); -1 with OSError set. */
int ringio_socket_family(int fd);

/* Convert addr for family into *ss / *len.  -1 with TypeError/ValueError. */
int ringio_addr_from_py(PyObject *addr, int family, struct sockaddr_storage *ss,
                        socklen_t *len);

/* New reference to the Python form of sa (None when len == 0). */
PyObject *ringio_addr_to_py(const struct sockaddr *sa, socklen_t len);

/* Build a control buffer from an iterable of (level, type, data) like
 * socket.sendmsg.  *buf is PyMem_Malloc'ed (NULL when empty); -1 on error. */
int ringio_cmsg_build(PyObject *ancdata, void **buf, size_t *len);

/* List of (level, type, bytes) from a received msghdr (socket.recvmsg). */
PyObject *ringio_cmsg_parse(const struct msghdr *msg);

/* Close every fd carried by SCM_RIGHTS in msg: used when a received message
 * is discarded so that no descriptor leaks. */
void ringio_cmsg_close_fds(const struct msghdr *msg);

#endif
