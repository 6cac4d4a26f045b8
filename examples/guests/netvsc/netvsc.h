/*
 * The netvsc wire format (Linux drivers/net/hyperv/hyperv_net.h, /work/shared/reference/netvsp.md
 * sections 2-9) and the Ethernet, ARP, IPv4, ICMP and UDP headers this guest builds and parses.
 * Layouts match Sources/Protocols/NVSP and Sources/Protocols/RNDIS.
 */
#ifndef NETVSC_H
#define NETVSC_H

#include "../vmbus-echo/guest.h"

/* The synthetic network adapter: f8615163-df3e-46c5-913f-f2d2f965ed0e, in wire order. */
#define NETWORK_ADAPTER_GUID_TEXT "f8615163-df3e-46c5-913f-f2d2f965ed0e"

/* ---- NVSP ---------------------------------------------------------------------------------- */

enum nvsp_msg_type {
    NVSP_MSG_TYPE_INIT = 1,
    NVSP_MSG_TYPE_INIT_COMPLETE = 2,
    NVSP_MSG1_TYPE_SEND_NDIS_VER = 100,
    NVSP_MSG1_TYPE_SEND_RECV_BUF = 101,
    NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE = 102,
    NVSP_MSG1_TYPE_REVOKE_RECV_BUF = 103,
    NVSP_MSG1_TYPE_SEND_SEND_BUF = 104,
    NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE = 105,
    NVSP_MSG1_TYPE_REVOKE_SEND_BUF = 106,
    NVSP_MSG1_TYPE_SEND_RNDIS_PKT = 107,
    NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE = 108,
    NVSP_MSG2_TYPE_SEND_NDIS_CONFIG = 125,
    NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION = 128,
    NVSP_MSG4_TYPE_SWITCH_DATA_PATH = 129,
    NVSP_MSG5_TYPE_SUBCHANNEL = 133,
    NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE = 134,
};

#define NVSP_STAT_SUCCESS 1
#define NVSP_STAT_FAIL 2
#define NVSP_SUBCHANNEL_ALLOCATE 1

#define NVSP_PROTOCOL_VERSION_1 0x2
#define NVSP_PROTOCOL_VERSION_2 0x30002
#define NVSP_PROTOCOL_VERSION_4 0x40000
#define NVSP_PROTOCOL_VERSION_5 0x50000
#define NVSP_PROTOCOL_VERSION_6 0x60000
#define NVSP_PROTOCOL_VERSION_61 0x60001

#define NDIS_VERSION_6_1 0x00060001
#define NDIS_VERSION_6_30 0x0006001e

/* The ids Linux gives its buffers (NETVSC_RECEIVE_BUFFER_ID, NETVSC_SEND_BUFFER_ID). */
#define NETVSC_RECEIVE_BUFFER_ID 0xCAFE
#define NETVSC_SEND_BUFFER_ID 0
#define NETVSC_INVALID_INDEX 0xFFFFFFFFu
/* Linux's transaction id for messages it wants no completion for (VMBUS_RQST_ID_NO_RESPONSE). */
#define VMBUS_RQST_ID_NO_RESPONSE 0xFFFFFFFFFFFFFFFDUL

/* ndis_config capability bits */
#define NDIS_CAP_SRIOV (1UL << 2)
#define NDIS_CAP_IEEE8021Q (1UL << 3)
#define NDIS_CAP_TEAMING (1UL << 5)
#define NDIS_CAP_RSC (1UL << 7)

struct nvsp_receive_buffer_section {
    u32 offset;
    u32 sub_alloc_size;
    u32 num_sub_allocs;
    u32 end_offset;
} PACKED;

/* struct nvsp_message: the 4-byte type and a union; Linux always sends all 40 bytes. */
struct nvsp_message {
    u32 msg_type;
    union {
        struct { u32 min_protocol_ver, max_protocol_ver; } PACKED init;
        struct { u32 negotiated_protocol_ver, max_mdl_chain_len, status; } PACKED init_complete;
        struct { u32 ndis_major_ver, ndis_minor_ver; } PACKED send_ndis_ver;
        struct { u32 gpadl_handle; u16 id; } PACKED send_buf;          /* SEND_RECV_BUF and SEND_SEND_BUF */
        struct { u16 id; } PACKED revoke_buf;
        struct {
            u32 status;
            u32 num_sections;
            struct nvsp_receive_buffer_section sections[1];
        } PACKED recv_buf_complete;
        struct { u32 status, section_size; } PACKED send_buf_complete;
        struct { u32 channel_type, send_buf_section_index, send_buf_section_size; } PACKED send_rndis_pkt;
        struct { u32 status; } PACKED send_rndis_pkt_complete;
        struct { u32 mtu, reserved; u64 capability; } PACKED send_ndis_config;
        struct { u32 allocated, serial; } PACKED vf_association;
        struct { u32 op, num_subchannels; } PACKED subchannel_request;
        struct { u32 status, num_subchannels; } PACKED subchannel_complete;
        struct { u32 count, offset; } PACKED indirection_table;
        u8 raw[36];
    };
} PACKED;
_Static_assert(sizeof(struct nvsp_message) == 40, "nvsp_message");
/* What Linux's netvsc_send_completion insists a completion of INIT, SEND_RECV_BUF, SEND_SEND_BUF
 * or SUBCHANNEL carries (the reference's "fall-through" rule: 4 + 24 bytes). */
#define NVSP_MIN_COMPLETION 28
#define NVSP_INDIRECTION_ENTRIES 16

/* ---- transfer-page packets (host -> guest) ----------------------------------------------- */

#define VM_PKT_DATA_USING_XFER_PAGES 7

struct vmtransfer_page_range {
    u32 byte_count;
    u32 byte_offset;
} PACKED;

/* After the 16-byte descriptor. */
struct vmtransfer_page_header {
    u16 xfer_pageset_id;
    u8 sender_owns_set;
    u8 reserved;
    u32 range_cnt;
    struct vmtransfer_page_range ranges[];
} PACKED;

/* Page-buffer (GPA-direct) sends: `count` single-page ranges, each {len, offset, pfn}, after a
 * reserved word and the range count (Linux vmbus_channel_packet_page_buffer). */
struct page_buffer_range {
    u32 len;
    u32 offset;
    u64 pfn;
} PACKED;

struct page_buffer_header {
    u32 reserved;
    u32 range_count;
    struct page_buffer_range range[];
} PACKED;

/* ---- RNDIS -------------------------------------------------------------------------------- */

#define RNDIS_MSG_PACKET 0x00000001
#define RNDIS_MSG_INIT 0x00000002
#define RNDIS_MSG_HALT 0x00000003
#define RNDIS_MSG_QUERY 0x00000004
#define RNDIS_MSG_SET 0x00000005
#define RNDIS_MSG_RESET 0x00000006
#define RNDIS_MSG_INDICATE 0x00000007
#define RNDIS_MSG_KEEPALIVE 0x00000008
#define RNDIS_MSG_COMPLETION 0x80000000

#define RNDIS_STATUS_SUCCESS 0x00000000
#define RNDIS_STATUS_MEDIA_CONNECT 0x4001000B
#define RNDIS_STATUS_MEDIA_DISCONNECT 0x4001000C
#define RNDIS_STATUS_NETWORK_CHANGE 0x40010018
#define RNDIS_STATUS_LINK_SPEED_CHANGE 0x40010013

#define OID_GEN_MAXIMUM_FRAME_SIZE 0x00010106
#define OID_GEN_LINK_SPEED 0x00010107
#define OID_GEN_CURRENT_PACKET_FILTER 0x0001010E
#define OID_GEN_MEDIA_CONNECT_STATUS 0x00010114
#define OID_GEN_RECEIVE_SCALE_CAPABILITIES 0x00010203
#define OID_GEN_RECEIVE_SCALE_PARAMETERS 0x00010204
#define OID_GEN_FRIENDLY_NAME 0x00020216
#define OID_802_3_PERMANENT_ADDRESS 0x01010101
#define OID_TCP_OFFLOAD_PARAMETERS 0xFC01020C
#define OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES 0xFC01020D

#define NDIS_PACKET_TYPE_DIRECTED 0x01
#define NDIS_PACKET_TYPE_ALL_MULTICAST 0x04
#define NDIS_PACKET_TYPE_BROADCAST 0x08
#define NDIS_PACKET_TYPE_PROMISCUOUS 0x20

struct rndis_header {
    u32 msg_type;
    u32 msg_len;
} PACKED;

struct rndis_initialize_request {
    u32 req_id, major_ver, minor_ver, max_xfer_size;
} PACKED;

struct rndis_initialize_complete {
    u32 req_id, status, major_ver, minor_ver, dev_flags, medium, max_pkt_per_msg, max_xfer_size,
        pkt_alignment_factor, af_list_offset, af_list_size;
} PACKED;
_Static_assert(sizeof(struct rndis_initialize_complete) == 44, "initialize complete");

/* QUERY and SET requests have the same shape; the data follows at info_buf_offset (20). */
struct rndis_query_request {
    u32 req_id, oid, info_buflen, info_buf_offset, dev_vc_handle;
} PACKED;
_Static_assert(sizeof(struct rndis_query_request) == 20, "query request");

struct rndis_query_complete {
    u32 req_id, status, info_buflen, info_buf_offset;
} PACKED;

struct rndis_set_complete {
    u32 req_id, status;
} PACKED;

struct rndis_indicate_status {
    u32 status, status_buflen, status_buf_offset;
} PACKED;

struct rndis_packet {
    u32 data_offset, data_len, oob_data_offset, oob_data_len, num_oob_data_elements, per_pkt_info_offset,
        per_pkt_info_len, vc_handle, reserved;
} PACKED;
_Static_assert(sizeof(struct rndis_packet) == 36, "rndis_packet");

struct rndis_per_packet_info {
    u32 size;
    u32 type;           /* bits 0-30; bit 31 "internal" */
    u32 ppi_offset;
} PACKED;

#define PPI_TCPIP_CHKSUM 0
#define PPI_LSO 2
#define PPI_IEEE_8021Q 6
#define PPI_HASH_VALUE 8

/* TX checksum request bits (ndis_tcp_ip_checksum_info.transmit) */
#define CSUM_TX_IPV4 (1u << 0)
#define CSUM_TX_UDP (1u << 3)
#define CSUM_TX_HEADER_OFFSET_SHIFT 16
/* RX checksum result bits (.receive) */
#define CSUM_RX_TCP_FAILED (1u << 0)
#define CSUM_RX_UDP_FAILED (1u << 1)
#define CSUM_RX_IP_FAILED (1u << 2)
#define CSUM_RX_TCP_SUCCEEDED (1u << 3)
#define CSUM_RX_UDP_SUCCEEDED (1u << 4)
#define CSUM_RX_IP_SUCCEEDED (1u << 5)

/* NDIS object headers */
struct ndis_object_header {
    u8 type;
    u8 revision;
    u16 size;
} PACKED;

#define NDIS_OBJECT_TYPE_DEFAULT 0x80
#define NDIS_OBJECT_TYPE_RSS_CAPABILITIES 0x88
#define NDIS_OBJECT_TYPE_RSS_PARAMETERS 0x89
#define NDIS_OBJECT_TYPE_OFFLOAD 0xA7

/* HARDWARE_CAPABILITIES sizes Linux asks for by NVSP version (NDIS_OFFLOAD_SIZE*). */
#define NDIS_OFFLOAD_SIZE_6_0 112
#define NDIS_OFFLOAD_SIZE_6_1 144
#define NDIS_OFFLOAD_SIZE 156

/* The parts of NDIS_OFFLOAD this guest reads, by byte offset. */
#define NDIS_OFFLOAD_CSUM_IP4_TX 8      /* checksum.ip4_txcsum (after the encapsulation word) */
#define NDIS_OFFLOAD_CSUM_IP6_TX 24
#define NDIS_OFFLOAD_LSOV2_IP4_ENCAP 80
#define NDIS_OFFLOAD_LSOV2_IP4_MAXSZ 84
#define NDIS_OFFLOAD_LSOV2_IP6_ENCAP 92
#define NDIS_OFFLOAD_LSOV2_IP6_OPTS 104

/* ndis_offload_params (revision 3, 28 bytes; revision 2, 22 bytes, for NVSP <= 4). */
struct ndis_offload_params {
    struct ndis_object_header header;
    u8 ip_v4_csum, tcp_ip_v4_csum, udp_ip_v4_csum, tcp_ip_v6_csum, udp_ip_v6_csum, lso_v1, ip_sec_v1, lso_v2_ipv4,
        lso_v2_ipv6, tcp_connection_ip_v4, tcp_connection_ip_v6;
    u8 pad;
    u32 flags;
    u8 ip_sec_v2, ip_sec_v2_ip_v4, rsc_ip_v4, rsc_ip_v6, encapsulated_packet_task_offload, encapsulation_types;
    u8 pad2[2];
} PACKED;
_Static_assert(sizeof(struct ndis_offload_params) == 28, "offload params");
#define NDIS_OFFLOAD_PARAMETERS_SIZE 28
#define NDIS_OFFLOAD_PARAMETERS_SIZE_6_1 22
#define NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED 1
#define NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED 4
#define NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED 2

struct ndis_recv_scale_cap {
    struct ndis_object_header hdr;
    u32 capabilities;
    u32 num_int_msg;
    u32 num_recv_que;
    u16 num_indirect_tabent;
} PACKED;
_Static_assert(sizeof(struct ndis_recv_scale_cap) == 18, "rss caps");

/* Not packed in Linux: natural alignment makes it 40 bytes. */
struct ndis_recv_scale_param {
    struct ndis_object_header hdr;
    u16 flag;
    u32 hashinfo;
    u16 indirect_tabsize;
    u32 indirect_taboffset;
    u16 hashkey_size;
    u32 hashkey_offset;
    u32 processor_masks_offset;
    u32 num_processor_masks;
    u32 processor_masks_entry_size;
};
_Static_assert(sizeof(struct ndis_recv_scale_param) == 40, "rss params");
#define NDIS_RSS_PARAM_FLAG_DISABLE_RSS 0x0010
#define NDIS_RSS_HASHINFO 0x1701        /* Toeplitz; IPv4, TCP/IPv4, IPv6, TCP/IPv6 */
#define ITAB_NUM 128
#define NETVSC_HASH_KEYLEN 40

/* ---- Ethernet and up ----------------------------------------------------------------------- */

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define IPPROTO_ICMP 1
#define IPPROTO_UDP 17

struct ethhdr {
    u8 dest[ETH_ALEN];
    u8 source[ETH_ALEN];
    u16 proto;          /* big-endian */
} PACKED;

struct arphdr {
    u16 htype, ptype;   /* big-endian */
    u8 hlen, plen;
    u16 oper;
    u8 sha[ETH_ALEN];
    u8 spa[4];
    u8 tha[ETH_ALEN];
    u8 tpa[4];
} PACKED;
_Static_assert(sizeof(struct arphdr) == 28, "arp");

struct iphdr {
    u8 ihl_version;
    u8 tos;
    u16 tot_len, id, frag_off;
    u8 ttl, protocol;
    u16 check;
    u8 saddr[4], daddr[4];
} PACKED;
_Static_assert(sizeof(struct iphdr) == 20, "ipv4");

struct icmphdr {
    u8 type, code;
    u16 checksum, id, sequence;
} PACKED;

struct udphdr {
    u16 source, dest, len, check;
} PACKED;

static inline u16 htons(u16 v) { return (u16)(v << 8 | v >> 8); }
#define ntohs htons

#endif
