/*
 * The storvsc wire format (Linux drivers/scsi/storvsc_drv.c; /work/shared/reference/storvsp.md
 * sections 2-6) and the SCSI constants this guest uses. Layouts match Sources/Protocols/StorVSP.
 */
#ifndef STORVSC_H
#define STORVSC_H

#include "../vmbus-echo/guest.h"

/* The synthetic SCSI controller: ba6163d9-04a1-4d29-b605-72e2ffb1dc7f, in wire order. */
#define SCSI_CONTROLLER_GUID_TEXT "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"

enum vstor_operation {
    VSTOR_OPERATION_COMPLETE_IO = 1,
    VSTOR_OPERATION_REMOVE_DEVICE = 2,
    VSTOR_OPERATION_EXECUTE_SRB = 3,
    VSTOR_OPERATION_BEGIN_INITIALIZATION = 7,
    VSTOR_OPERATION_END_INITIALIZATION = 8,
    VSTOR_OPERATION_QUERY_PROTOCOL_VERSION = 9,
    VSTOR_OPERATION_QUERY_PROPERTIES = 10,
    VSTOR_OPERATION_ENUMERATE_BUS = 11,
    VSTOR_OPERATION_CREATE_SUB_CHANNELS = 13,
};

#define REQUEST_COMPLETION_FLAG 1
#define STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL 1
#define VMSTOR_PROTO_VERSION_WIN8 0x0501
#define VMSTOR_PROTO_VERSION_WIN8_1 0x0600
#define VMSTOR_PROTO_VERSION_WIN10 0x0602

/* The transaction id Linux gives every initialization request (VMBUS_RQST_INIT). */
#define VMBUS_RQST_INIT 0xFFFFFFFFFFFFFFFDUL

#define STORVSC_SENSE_BUFFER_SIZE 0x14
#define STORVSC_MAX_CMD_LEN 0x10

/* data_in */
#define WRITE_TYPE 0
#define READ_TYPE 1
#define UNKNOWN_TYPE 2

/* srb_flags of the Win8 extension */
#define SRB_FLAGS_QUEUE_ACTION_ENABLE 0x00000002
#define SRB_FLAGS_DISABLE_SYNCH_TRANSFER 0x00000008
#define SRB_FLAGS_DATA_IN 0x00000040
#define SRB_FLAGS_DATA_OUT 0x00000080
#define SRB_FLAGS_NO_QUEUE_FREEZE 0x00000100
#define SP_UNTAGGED 0xFF
#define SRB_SIMPLE_TAG_REQUEST 0x20

/* srb_status: the low 6 bits, plus flags */
#define SRB_STATUS_SUCCESS 0x01
#define SRB_STATUS_ERROR 0x04
#define SRB_STATUS_INVALID_LUN 0x20
#define SRB_STATUS_AUTOSENSE_VALID 0x80
#define SRB_STATUS(s) ((s) & 0x3F)

struct vmscsi_request {
    u16 length;
    u8 srb_status;
    u8 scsi_status;
    u8 port_number;
    u8 path_id;
    u8 target_id;
    u8 lun;
    u8 cdb_length;
    u8 sense_info_length;
    u8 data_in;
    u8 reserved;
    u32 data_transfer_length;
    union {
        u8 cdb[STORVSC_MAX_CMD_LEN];
        u8 sense_data[STORVSC_SENSE_BUFFER_SIZE];
    };
    /* Win8 extension */
    u16 reserve;
    u8 queue_tag;
    u8 queue_action;
    u32 srb_flags;
    u32 time_out_value;
    u32 queue_sort_key;
} PACKED;

struct vmstorage_channel_properties {
    u32 reserved;
    u16 max_channel_cnt;
    u16 reserved1;
    u32 flags;
    u32 max_transfer_bytes;
    u64 reserved2;
} PACKED;

struct vmstorage_protocol_version {
    u16 major_minor;
    u16 revision;
} PACKED;

struct vstor_packet {
    u32 operation;
    u32 flags;
    u32 status;
    union {
        struct vmscsi_request vm_srb;
        struct vmstorage_channel_properties storage_channel_properties;
        struct vmstorage_protocol_version version;
        u16 sub_channel_count;
        u8 buffer[0x34];
    };
} PACKED;

_Static_assert(sizeof(struct vmscsi_request) == 0x34, "vmscsi_request (Win8+)");
_Static_assert(sizeof(struct vmstorage_channel_properties) == 24, "channel properties");
_Static_assert(sizeof(struct vstor_packet) == 64, "vstor_packet");

/* The body of a GPA-direct packet after its 16-byte descriptor (Linux vmbus_packet_mpb_array):
 * reserved, range count (1), then one range {byte count, byte offset in the first page, PFNs}. */
struct gpa_direct_header {
    u32 reserved;
    u32 range_count;
    u32 byte_count;
    u32 byte_offset;
    u64 pfn[];
} PACKED;
_Static_assert(sizeof(struct gpa_direct_header) == 16, "GPA-direct range header");

/* SCSI */
#define TEST_UNIT_READY 0x00
#define INQUIRY 0x12
#define MODE_SENSE 0x1A
#define READ_CAPACITY 0x25
#define READ_10 0x28
#define WRITE_10 0x2A
#define SYNCHRONIZE_CACHE 0x35
#define READ_16 0x88
#define WRITE_16 0x8A
#define SYNCHRONIZE_CACHE_16 0x91
#define SERVICE_ACTION_IN_16 0x9E
#define SAI_READ_CAPACITY_16 0x10
#define REPORT_LUNS 0xA0

#define SAM_STAT_GOOD 0x00
#define SAM_STAT_CHECK_CONDITION 0x02

#define ILLEGAL_REQUEST 0x05
#define DATA_PROTECT 0x07

#endif
