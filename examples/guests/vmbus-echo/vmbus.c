/*
 * The guest side of VMBus channel management: connect, discover, GPADL, open, close, unload.
 * Each request waits for its reply by polling the SINT2 message slot, with a deadline: a host
 * that never answers fails the run.
 */
#include "vmbus.h"
#include "hv.h"

#define REPLY_TIMEOUT_MS 3000
#define MAX_OFFERS 256

struct vmbus_connection vmbus;

/* Monitor pages, which Linux always hands over in INITIATE_CONTACT (this host ignores them: it
 * offers channels with monitor_allocated = 0), and the pre-5.0 interrupt page. */
static u8 monitor_pages[2][4096] ALIGNED(4096);
static u8 interrupt_page[4096] ALIGNED(4096);

void print_guid(const u8 g[16])
{
    u32 d1 = (u32)g[0] | (u32)g[1] << 8 | (u32)g[2] << 16 | (u32)g[3] << 24;
    printf("%08x-%04x-%04x-", d1, (u32)(g[4] | g[5] << 8), (u32)(g[6] | g[7] << 8));
    for (int i = 8; i < 16; i++)
        printf(i == 10 ? "-%02x" : "%02x", g[i]);
}

static void post(u32 connection_id, const void *message, u32 size, const char *step)
{
    u16 status = hv_post_message(connection_id, VMBUS_MESSAGE_TYPE, message, size);
    if (status != HV_STATUS_SUCCESS)
        fail(step, "HvPostMessage of msgtype %u (%u bytes) to connection %u returned 0x%x",
             ((const struct vmbus_msg_header *)message)->msgtype, size, connection_id, status);
}

/* Rescinds of channels this guest is closing (a VSP withdraws its sub-channels when they close),
 * kept until vmbus_release_rescinded: Linux sends RELID_RELEASED only once the channel's close
 * and GPADL teardown are done (hv_process_channel_removal). */
static u32 rescinded[64];

static bool note_rescind(const struct hv_message *m, const char *step)
{
    const struct vmbus_msg_header *h = (const void *)m->payload;
    if (h->msgtype != CHANNELMSG_RESCIND_CHANNELOFFER || m->payload_size < sizeof(struct vmbus_rescind_offer))
        return false;
    u32 relid = ((const struct vmbus_rescind_offer *)m->payload)->child_relid;
    if (vmbus.rescinds >= ARRAY_SIZE(rescinded))
        fail(step, "more than %lu rescinds", ARRAY_SIZE(rescinded));
    for (u32 i = 0; i < vmbus.rescinds; i++)
        if (rescinded[i] == relid)
            fail(step, "relid %u rescinded twice", relid);
    rescinded[vmbus.rescinds++] = relid;
    printf(PROG ": %s: host rescinded relid %u\n", step, relid);
    return true;
}

void vmbus_release_rescinded(void)
{
    for (u32 i = 0; i < vmbus.rescinds; i++) {
        struct vmbus_relid_released released = { .header.msgtype = CHANNELMSG_RELID_RELEASED,
                                                  .child_relid = rescinded[i] };
        post(vmbus.msg_conn_id, &released, sizeof(released), "release");
    }
}

/* Waits for the next channel message; it must be `want` and at least `size` bytes long. With
 * `vmbus.accept_rescinds`, rescinds that come first are noted and skipped. */
static const void *receive(struct hv_message *m, u32 want, u32 size, const char *step)
{
    u64 deadline = deadline_ms(REPLY_TIMEOUT_MS);
    for (;;) {
        while (!hv_take_message(VMBUS_MESSAGE_SINT, m)) {
            if (expired(deadline))
                fail(step, "no reply (want msgtype %u) within %u ms", want, REPLY_TIMEOUT_MS);
            cpu_relax();
        }
        if (m->message_type != VMBUS_MESSAGE_TYPE)
            fail(step, "SynIC message type 0x%x, want %u (VMBus)", m->message_type, VMBUS_MESSAGE_TYPE);
        if (m->payload_size < sizeof(struct vmbus_msg_header))
            fail(step, "channel message of %u bytes", m->payload_size);
        if (!(vmbus.accept_rescinds && want != CHANNELMSG_RESCIND_CHANNELOFFER && note_rescind(m, step)))
            break;
    }
    const struct vmbus_msg_header *h = (const void *)m->payload;
    if (h->msgtype != want)
        fail(step, "got msgtype %u, want %u", h->msgtype, want);
    if (m->payload_size < size)
        fail(step, "msgtype %u is %u bytes, want at least %u", want, m->payload_size, size);
    return m->payload;
}

/* One INITIATE_CONTACT; returns whether the host accepted `version`. */
static bool initiate_contact(u32 version, u32 vp_index, u32 *msg_conn_id)
{
    struct vmbus_initiate_contact msg = { .header.msgtype = CHANNELMSG_INITIATE_CONTACT };
    msg.version_requested = version;
    msg.target_vcpu = vp_index;
    u32 connection_id;
    if (version >= VERSION_WIN10_V5) {
        msg.msg_sint = VMBUS_MESSAGE_SINT;
        msg.msg_vtl = 0;
        connection_id = VMBUS_MESSAGE_CONNECTION_ID_4;
    } else {
        msg.interrupt_page = (u64)interrupt_page;
        connection_id = VMBUS_MESSAGE_CONNECTION_ID;
    }
    msg.monitor_page1 = (u64)monitor_pages[0];
    msg.monitor_page2 = (u64)monitor_pages[1];
    post(connection_id, &msg, sizeof(msg), "connect");

    struct hv_message m;
    const struct vmbus_version_response *r =
        receive(&m, CHANNELMSG_VERSION_RESPONSE, sizeof(*r), "connect");
    if (!r->version_supported)
        return false;
    if (r->connection_state != 0)
        fail("connect", "version %u.%u accepted with connection_state %u", version >> 16, version & 0xFFFF,
             r->connection_state);
    /* From 5.0 the reply names the connection id for everything after this (Linux
     * vmbus_negotiate_version); before, it is always 1. */
    *msg_conn_id = version >= VERSION_WIN10_V5 ? r->msg_conn_id : VMBUS_MESSAGE_CONNECTION_ID;
    return true;
}

void vmbus_connect(u32 vp_index)
{
    /* The error path first: a version no host knows must be refused (version_supported = 0),
     * which is what makes a guest step down. */
    u32 ignored;
    if (initiate_contact(VMBUS_VERSION(0xFF, 0xFF), vp_index, &ignored))
        fail("connect", "host accepted made-up version 255.255");

    static const u32 versions[] = { VMBUS_VERSION(5, 3), VMBUS_VERSION(5, 2), VMBUS_VERSION(5, 1),
                                    VMBUS_VERSION(5, 0), VMBUS_VERSION(4, 1), VMBUS_VERSION(4, 0) };
    for (u32 i = 0; i < ARRAY_SIZE(versions); i++) {
        u32 conn_id;
        if (initiate_contact(versions[i], vp_index, &conn_id)) {
            vmbus.version = versions[i];
            vmbus.msg_conn_id = conn_id;
            vmbus.target_vp = vp_index;
            printf(PROG ": connect: 255.255 refused; VMBus %u.%u accepted after %u refusals, "
                   "messages to connection id %u\n",
                   versions[i] >> 16, versions[i] & 0xFFFF, i, conn_id);
            return;
        }
    }
    fail("connect", "host refused every version from 5.3 down to 4.0");
}

static void offer_info_from(const struct vmbus_offer_channel *o, struct vmbus_offer_info *found)
{
    memcpy(found->if_type, o->if_type, 16);
    memcpy(found->if_instance, o->if_instance, 16);
    found->child_relid = o->child_relid;
    found->connection_id = o->connection_id;
    found->monitor_allocated = o->monitor_allocated & 1;
    found->is_dedicated_interrupt = o->is_dedicated_interrupt & 1;
    found->chn_flags = o->chn_flags;
    found->sub_channel_index = o->sub_channel_index;
    memcpy(&found->pipe_mode, o->user_def, sizeof(found->pipe_mode));
}

/* A channel message known to be at least a header: an OFFERCHANNEL, printed and checked. */
static const struct vmbus_offer_channel *checked_offer(const struct hv_message *m, const char *step)
{
    const struct vmbus_msg_header *h = (const void *)m->payload;
    if (m->message_type != VMBUS_MESSAGE_TYPE || m->payload_size < sizeof(struct vmbus_offer_channel)
        || h->msgtype != CHANNELMSG_OFFERCHANNEL)
        fail(step, "SynIC type %u msgtype %u (%u bytes) while collecting offers", m->message_type,
             m->payload_size >= sizeof(*h) ? h->msgtype : 0, m->payload_size);
    const struct vmbus_offer_channel *o = (const void *)m->payload;
    printf(PROG ": %s: type ", step);
    print_guid(o->if_type);
    printf(" instance ");
    print_guid(o->if_instance);
    printf(" relid %u connection 0x%x monitor %u dedicated %u sub-channel %u\n", o->child_relid, o->connection_id,
           o->monitor_allocated & 1, o->is_dedicated_interrupt & 1, o->sub_channel_index);
    if (o->child_relid == 0 || o->child_relid > 2047)
        fail(step, "relid %u has no event flag (1..2047)", o->child_relid);
    return o;
}

u32 vmbus_request_offers_of(const u8 if_type[16], struct vmbus_offer_info *found, u32 max)
{
    struct vmbus_msg_header request = { .msgtype = CHANNELMSG_REQUESTOFFERS };
    post(vmbus.msg_conn_id, &request, sizeof(request), "offers");
    u32 matching = 0;
    for (u32 offers = 0;; offers++) {
        if (offers > MAX_OFFERS)
            fail("offers", "more than %u offers without ALLOFFERS_DELIVERED", MAX_OFFERS);
        struct hv_message m;
        u64 deadline = deadline_ms(REPLY_TIMEOUT_MS);
        while (!hv_take_message(VMBUS_MESSAGE_SINT, &m)) {
            if (expired(deadline))
                fail("offers", "no OFFERCHANNEL or ALLOFFERS_DELIVERED within %u ms", REPLY_TIMEOUT_MS);
            cpu_relax();
        }
        const struct vmbus_msg_header *h = (const void *)m.payload;
        if (m.message_type == VMBUS_MESSAGE_TYPE && m.payload_size >= sizeof(*h)
            && h->msgtype == CHANNELMSG_ALLOFFERS_DELIVERED) {
            printf(PROG ": offers: ALLOFFERS_DELIVERED after %u offer(s)\n", offers);
            return matching;
        }
        const struct vmbus_offer_channel *o = checked_offer(&m, "offers");
        if (memcmp(o->if_type, if_type, 16) == 0) {
            if (matching < max)
                offer_info_from(o, &found[matching]);
            matching++;
        }
    }
}

bool vmbus_request_offers(const u8 if_type[16], struct vmbus_offer_info *found)
{
    u32 n = vmbus_request_offers_of(if_type, found, 1);
    if (n > 1)
        fail("offers", "%u offers of the interface", n);
    return n == 1;
}

void vmbus_wait_offer(struct vmbus_offer_info *found, const char *step)
{
    struct hv_message m;
    u64 deadline = deadline_ms(REPLY_TIMEOUT_MS);
    while (!hv_take_message(VMBUS_MESSAGE_SINT, &m)) {
        if (expired(deadline))
            fail(step, "no OFFERCHANNEL within %u ms", REPLY_TIMEOUT_MS);
        cpu_relax();
    }
    offer_info_from(checked_offer(&m, step), found);
}

u32 vmbus_create_gpadl(u32 relid, u32 gpadl, const u64 *pfns, u32 count)
{
    if (count == 0 || count > 0xFFFF / 8 - 1)
        fail("gpadl", "%u pages do not fit one range", count);
    u8 buffer[240] ALIGNED(8);
    memset(buffer, 0, sizeof(buffer));
    struct vmbus_gpadl_header *header = (void *)buffer;
    header->header.msgtype = CHANNELMSG_GPADL_HEADER;
    header->child_relid = relid;
    header->gpadl = gpadl;
    header->range_buflen = (u16)(sizeof(struct vmbus_gpa_range_header) + count * 8);
    header->rangecount = 1;
    header->range.byte_count = count * (u32)PAGE_SIZE;
    header->range.byte_offset = 0;
    u32 first = count < GPADL_HEADER_PFNS ? count : (u32)GPADL_HEADER_PFNS;
    memcpy(header->pfn, pfns, first * 8);
    post(vmbus.msg_conn_id, header, (u32)sizeof(*header) + first * 8, "gpadl");

    u32 bodies = 0;
    for (u32 done = first; done < count; bodies++) {
        u32 n = count - done < GPADL_BODY_PFNS ? count - done : (u32)GPADL_BODY_PFNS;
        memset(buffer, 0, sizeof(buffer));
        struct vmbus_gpadl_body *body = (void *)buffer;
        body->header.msgtype = CHANNELMSG_GPADL_BODY;
        body->msgnumber = 0; /* Linux leaves it zero */
        body->gpadl = gpadl;
        memcpy(body->pfn, pfns + done, n * 8);
        post(vmbus.msg_conn_id, body, (u32)sizeof(*body) + n * 8, "gpadl");
        done += n;
    }

    struct hv_message m;
    const struct vmbus_gpadl_created *r = receive(&m, CHANNELMSG_GPADL_CREATED, sizeof(*r), "gpadl");
    if (r->child_relid != relid || r->gpadl != gpadl || r->creation_status != 0)
        fail("gpadl", "GPADL_CREATED relid %u gpadl 0x%x status 0x%x, want relid %u gpadl 0x%x status 0",
             r->child_relid, r->gpadl, r->creation_status, relid, gpadl);
    return bodies;
}

void vmbus_open(u32 relid, u32 gpadl, u32 downstream_page_offset)
{
    struct vmbus_open_channel msg = { .header.msgtype = CHANNELMSG_OPENCHANNEL };
    msg.child_relid = relid;
    msg.openid = relid; /* as Linux's vmbus_open */
    msg.ringbuffer_gpadlhandle = gpadl;
    msg.target_vp = vmbus.target_vp;
    msg.downstream_ringbuffer_pageoffset = downstream_page_offset;
    post(vmbus.msg_conn_id, &msg, sizeof(msg), "open");

    struct hv_message m;
    const struct vmbus_open_result *r = receive(&m, CHANNELMSG_OPENCHANNEL_RESULT, sizeof(*r), "open");
    if (r->child_relid != relid || r->openid != relid || r->status != 0)
        fail("open", "OPENCHANNEL_RESULT relid %u openid %u status 0x%x, want relid %u openid %u status 0",
             r->child_relid, r->openid, r->status, relid, relid);
}

void vmbus_close(u32 relid)
{
    struct vmbus_close_channel msg = { .header.msgtype = CHANNELMSG_CLOSECHANNEL, .child_relid = relid };
    post(vmbus.msg_conn_id, &msg, sizeof(msg), "close"); /* no reply */
}

void vmbus_teardown_gpadl(u32 relid, u32 gpadl)
{
    struct vmbus_gpadl_teardown msg = { .header.msgtype = CHANNELMSG_GPADL_TEARDOWN };
    msg.child_relid = relid;
    msg.gpadl = gpadl;
    post(vmbus.msg_conn_id, &msg, sizeof(msg), "teardown");
    struct hv_message m;
    const struct vmbus_gpadl_torndown *r = receive(&m, CHANNELMSG_GPADL_TORNDOWN, sizeof(*r), "teardown");
    if (r->gpadl != gpadl)
        fail("teardown", "GPADL_TORNDOWN for gpadl 0x%x, want 0x%x", r->gpadl, gpadl);
}

void vmbus_unload(void)
{
    struct vmbus_msg_header msg = { .msgtype = CHANNELMSG_UNLOAD };
    post(vmbus.msg_conn_id, &msg, sizeof(msg), "unload");
    struct hv_message m;
    receive(&m, CHANNELMSG_UNLOAD_RESPONSE, sizeof(struct vmbus_msg_header), "unload");
}
