/* tzemu stand-in: ABI headers only hold pointers to these kernel objects. */
#ifndef _LINUX_DEVICE_H
#define _LINUX_DEVICE_H
struct device;
struct device_driver;
struct bus_type;
#endif
