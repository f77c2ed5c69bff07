/* tzemu stand-in: module boilerplate has no ABI content. */
#ifndef _LINUX_MODULE_H
#define _LINUX_MODULE_H
struct module;
#define THIS_MODULE	((struct module *)0)
#endif
