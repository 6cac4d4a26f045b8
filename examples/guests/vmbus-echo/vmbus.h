/*
 * VMBus channel-management messages (Linux include/linux/hyperv.h, drivers/hv/connection.c,
 * channel.c, channel_mgmt.c). Layouts match Sources/Protocols/VMBus.
 */
#ifndef VMBUS_H
#define VMBUS_H

#include "guest.h"

enum vmbus_msgtype {
    CHANNELMSG_OFFERCHANNEL = 1,
    CHANNELMSG_RESCIND_CHANNELOFFER = 2,
    CHANNELMSG_REQUESTOFFERS = 3,
    CHANNELMSG_ALLOFFERS_DELIVERED = 4,
    CHANNELMSG_OPENCHANNEL = 5,
    CHANNELMSG_OPENCHANNEL_RESULT = 6,
    CHANNELMSG_CLOSECHANNEL = 7,
    CHANNELMSG_GPADL_HEADER = 8,
    CHANNELMSG_GPADL_BODY = 9,
    CHANNELMSG_GPADL_CREATED = 10,
    CHANNELMSG_GPADL_TEARDOWN = 11,
    CHANNELMSG_GPADL_TORNDOWN = 12,
    CHANNELMSG_RELID_RELEASED = 13,
    CHANNELMSG_INITIATE_CONTACT = 14,
    CHANNELMSG_VERSION_RESPONSE = 15,
    CHANNELMSG_UNLOAD = 16,
    CHANNELMSG_UNLOAD_RESPONSE = 17,
};

#define VMBUS_VERSION(major, minor) ((u32)(major) << 16 | (minor))
#define VERSION_WIN10_V5 VMBUS_VERSION(5, 0)
/* The SynIC message type VMBus channel messages are posted and delivered with. */
#define VMBUS_MESSAGE_TYPE 1
#define VMBUS_MESSAGE_CONNECTION_ID 1
#define VMBUS_MESSAGE_CONNECTION_ID_4 4
/* Linux's first GPADL handle (vmbus_connection.next_gpadl_handle). */
#define VMBUS_FIRST_GPADL 0xE1E10

struct vmbus_msg_header {
    u32 msgtype;
    u32 padding;
} PACKED;

struct vmbus_initiate_contact {
    struct vmbus_msg_header header;
    u32 version_requested;
    u32 target_vcpu;
    union {
        u64 interrupt_page;     /* before 5.0 */
        struct {
            u8 msg_sint;
            u8 msg_vtl;
            u8 reserved[6];
        } PACKED;
    };
    u64 monitor_page1;
    u64 monitor_page2;
} PACKED;

struct vmbus_version_response {
    struct vmbus_msg_header header;
    u8 version_supported;
    u8 connection_state;
    u16 padding;
    u32 msg_conn_id;
} PACKED;

struct vmbus_offer_channel {
    struct vmbus_msg_header header;
    u8 if_type[16];
    u8 if_instance[16];
    u64 reserved1;
    u64 reserved2;
    u16 chn_flags;
    u16 mmio_megabytes;
    u8 user_def[120];
    u16 sub_channel_index;
    u16 mmio_megabytes_optional;
    u32 child_relid;
    u8 monitorid;
    u8 monitor_allocated;       /* bit 0 */
    u16 is_dedicated_interrupt; /* bit 0 */
    u32 connection_id;
} PACKED;

struct vmbus_gpa_range_header {
    u32 byte_count;
    u32 byte_offset;
} PACKED;

struct vmbus_gpadl_header {
    struct vmbus_msg_header header;
    u32 child_relid;
    u32 gpadl;
    u16 range_buflen;
    u16 rangecount;
    struct vmbus_gpa_range_header range;
    u64 pfn[];
} PACKED;

struct vmbus_gpadl_body {
    struct vmbus_msg_header header;
    u32 msgnumber;
    u32 gpadl;
    u64 pfn[];
} PACKED;

struct vmbus_gpadl_created {
    struct vmbus_msg_header header;
    u32 child_relid;
    u32 gpadl;
    u32 creation_status;
} PACKED;

struct vmbus_open_channel {
    struct vmbus_msg_header header;
    u32 child_relid;
    u32 openid;
    u32 ringbuffer_gpadlhandle;
    u32 target_vp;
    u32 downstream_ringbuffer_pageoffset;
    u8 userdata[120];
} PACKED;

struct vmbus_open_result {
    struct vmbus_msg_header header;
    u32 child_relid;
    u32 openid;
    u32 status;
} PACKED;

struct vmbus_close_channel {
    struct vmbus_msg_header header;
    u32 child_relid;
} PACKED;

struct vmbus_gpadl_teardown {
    struct vmbus_msg_header header;
    u32 child_relid;
    u32 gpadl;
} PACKED;

struct vmbus_rescind_offer {
    struct vmbus_msg_header header;
    u32 child_relid;
} PACKED;

struct vmbus_relid_released {
    struct vmbus_msg_header header;
    u32 child_relid;
} PACKED;

struct vmbus_gpadl_torndown {
    struct vmbus_msg_header header;
    u32 gpadl;
} PACKED;

_Static_assert(sizeof(struct vmbus_initiate_contact) == 40, "initiate contact");
_Static_assert(sizeof(struct vmbus_version_response) == 16, "version response");
_Static_assert(sizeof(struct vmbus_offer_channel) == 196, "offer");
_Static_assert(sizeof(struct vmbus_gpadl_header) == 28, "gpadl header");
_Static_assert(sizeof(struct vmbus_gpadl_body) == 16, "gpadl body");
_Static_assert(sizeof(struct vmbus_gpadl_created) == 20, "gpadl created");
_Static_assert(sizeof(struct vmbus_open_channel) == 148, "open channel");
_Static_assert(sizeof(struct vmbus_open_result) == 20, "open result");
_Static_assert(sizeof(struct vmbus_close_channel) == 12, "close");
_Static_assert(sizeof(struct vmbus_gpadl_teardown) == 16, "teardown");
_Static_assert(sizeof(struct vmbus_gpadl_torndown) == 12, "torndown");
_Static_assert(sizeof(struct vmbus_rescind_offer) == 12, "rescind");
_Static_assert(sizeof(struct vmbus_relid_released) == 12, "relid released");

/* PFNs that fit in the first and in each further GPADL message (Linux create_gpadl_header). */
#define GPADL_HEADER_PFNS ((240 - sizeof(struct vmbus_gpadl_header)) / 8)
#define GPADL_BODY_PFNS ((240 - sizeof(struct vmbus_gpadl_body)) / 8)

struct vmbus_offer_info {
    u8 if_type[16];
    u8 if_instance[16];
    u32 child_relid;
    u32 connection_id;
    u8 monitor_allocated;
    u16 is_dedicated_interrupt;
    u16 chn_flags;
    u32 pipe_mode;              /* the first u32 of user_def */
    u16 sub_channel_index;      /* 0: a primary channel */
};

struct vmbus_connection {
    u32 version;
    u32 msg_conn_id;            /* where channel messages go after INITIATE_CONTACT */
    u32 target_vp;
    bool accept_rescinds;       /* note rescinds of closed channels while waiting for a reply */
    u32 rescinds;               /* how many were noted */
};
extern struct vmbus_connection vmbus;

void vmbus_connect(u32 vp_index);
/* REQUESTOFFERS; returns whether an offer of interface `if_type` arrived before
 * ALLOFFERS_DELIVERED, and fills `found` with it. */
bool vmbus_request_offers(const u8 if_type[16], struct vmbus_offer_info *found);
/* REQUESTOFFERS; stores up to `max` offers of `if_type` that arrive before ALLOFFERS_DELIVERED
 * in `found` and returns how many there were (possibly more than `max`). */
u32 vmbus_request_offers_of(const u8 if_type[16], struct vmbus_offer_info *found, u32 max);
/* Waits for the next channel message, which must be an OFFERCHANNEL (e.g. a sub-channel the
 * device offers after the guest asked for it). */
void vmbus_wait_offer(struct vmbus_offer_info *found, const char *step);
/* Returns how many GPADL_BODY messages it took. */
u32 vmbus_create_gpadl(u32 relid, u32 gpadl, const u64 *pfns, u32 count);
void vmbus_open(u32 relid, u32 gpadl, u32 downstream_page_offset);
void vmbus_close(u32 relid);
void vmbus_teardown_gpadl(u32 relid, u32 gpadl);
/* RELID_RELEASED for every rescind noted (with accept_rescinds), as Linux does once the
 * channels are closed and their GPADLs torn down. */
void vmbus_release_rescinded(void);
void vmbus_unload(void);

void print_guid(const u8 guid[16]);

#endif
