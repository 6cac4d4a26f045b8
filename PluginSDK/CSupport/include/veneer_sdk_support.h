/* System calls the Swift SDK needs that Swift's Glibc module does not export. */
#ifndef VENEER_SDK_SUPPORT_H
#define VENEER_SDK_SUPPORT_H

/* A non-blocking, close-on-exec eventfd (for in-kernel doorbells); -1 and errno on failure. */
int veneer_sdk_eventfd(void);

#endif
