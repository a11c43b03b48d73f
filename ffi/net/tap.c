/*
 * The TAP backend: /dev/net/tun with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte
 * virtio_net_hdr (TUNSETVNETHDRSZ), so packets cross in both directions with the same header the
 * guest's driver uses. An existing interface is attached by name, or a new one is created (a
 * name, or "" for the kernel's next tapN).
 */
#define _GNU_SOURCE
#include "net.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/*
 * Opens a TAP device named `ifname` (caller-owned string read during the call; "" lets the
 * kernel choose). Returns the endpoint (owned by the caller until vmon_net_close(); its poll
 * thread starts with vmon_net_start()), or NULL with the reason in `err` (caller-owned, `errlen`
 * bytes): the words after "Cannot open TAP device ...: ".
 */
VMON_EXPORT vmon_net *vmon_net_open_tap(const char *ifname, char *err, int errlen) {
  if (strlen(ifname) >= IFNAMSIZ) {
    net__set_error(err, errlen, "interface names have at most %d characters", IFNAMSIZ - 1);
    return NULL;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) net__set_error(err, errlen, "/dev/net/tun does not exist");
    else if (e == EACCES || e == EPERM) net__set_error(err, errlen, "no permission to open /dev/net/tun");
    else if (e == ENODEV || e == ENXIO) net__set_error(err, errlen, "the kernel has no TUN/TAP support");
    else net__set_error(err, errlen, "cannot open /dev/net/tun (%s)", strerror(e));
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  memcpy(ifr.ifr_name, ifname, strlen(ifname));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    if (e == EPERM || e == EACCES)
      net__set_error(err, errlen, "no permission (creating or attaching a TAP device needs CAP_NET_ADMIN or a device owned by this user)");
    else if (e == EBUSY)
      net__set_error(err, errlen, "busy (another process has it open)");
    else if (e == EINVAL)
      net__set_error(err, errlen, "an interface of that name exists and is not a TAP device");
    else
      net__set_error(err, errlen, "TUNSETIFF failed (%s)", strerror(e));
    return NULL;
  }
  int hdr = NET_HDR;
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
    int e = errno;
    close(fd);
    net__set_error(err, errlen, "cannot set the virtio-net header size (%s)", strerror(e));
    return NULL;
  }
  vmon_net *n = net__alloc(NET_KIND_TAP, fd);
  if (!n) {
    close(fd);
    net__set_error(err, errlen, "out of memory");
    return NULL;
  }
  memcpy(n->ifname, ifr.ifr_name, IFNAMSIZ);
  n->ifname[IFNAMSIZ - 1] = 0;
  return n;
}
