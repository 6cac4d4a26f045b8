#include "veneer_sdk_support.h"
#include <sys/eventfd.h>

int veneer_sdk_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }
