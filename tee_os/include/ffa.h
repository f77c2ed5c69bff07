/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: FF-A as seen by the S-EL1 SPMC inside the secure OS -
 * function ids, error codes, versions and the memory-transaction
 * descriptor layouts it parses out of a caller's TX buffer.
 */
#ifndef __TZEMU_FFA_H
#define __TZEMU_FFA_H

#include <types.h>
#include <util.h>

/* Error codes (w2 of FFA_ERROR); negative ints */
#define FFA_OK				0
#define FFA_NOT_SUPPORTED		-1
#define FFA_INVALID_PARAMETERS		-2
#define FFA_NO_MEMORY			-3
#define FFA_BUSY			-4
#define FFA_INTERRUPTED			-5
#define FFA_DENIED			-6
#define FFA_RETRY			-7
#define FFA_ABORTED			-8
#define FFA_NO_DATA			-9

/* Versions: (major << 16) | minor, bit 31 clear */
#define FFA_VERSION_MAJOR_SHIFT		U(16)
#define FFA_VERSION_MAJOR_MASK		U(0x7FFF)
#define FFA_VERSION_MINOR_MASK		U(0xFFFF)
#define MAKE_FFA_VERSION(major, minor)	\
	((((major) & FFA_VERSION_MAJOR_MASK) << FFA_VERSION_MAJOR_SHIFT) | \
	 ((minor) & FFA_VERSION_MINOR_MASK))
#define FFA_VERSION_1_0			MAKE_FFA_VERSION(1, 0)
#define FFA_VERSION_1_1			MAKE_FFA_VERSION(1, 1)
#define FFA_VERSION_1_2			MAKE_FFA_VERSION(1, 2)

/* Function ids (fast calls, Standard Secure Service owner) */
#define FFA_ERROR			U(0x84000060)
#define FFA_SUCCESS_32			U(0x84000061)
#define FFA_SUCCESS_64			U(0xC4000061)
#define FFA_INTERRUPT			U(0x84000062)
#define FFA_VERSION			U(0x84000063)
#define FFA_FEATURES			U(0x84000064)
#define FFA_RX_RELEASE			U(0x84000065)
#define FFA_RXTX_MAP_32			U(0x84000066)
#define FFA_RXTX_MAP_64			U(0xC4000066)
#define FFA_RXTX_UNMAP			U(0x84000067)
#define FFA_PARTITION_INFO_GET		U(0x84000068)
#define FFA_ID_GET			U(0x84000069)
#define FFA_MSG_POLL			U(0x8400006A)
#define FFA_MSG_WAIT			U(0x8400006B)
#define FFA_YIELD			U(0x8400006C)
#define FFA_RUN				U(0x8400006D)
#define FFA_MSG_SEND			U(0x8400006E)
#define FFA_MSG_SEND_DIRECT_REQ_32	U(0x8400006F)
#define FFA_MSG_SEND_DIRECT_REQ_64	U(0xC400006F)
#define FFA_MSG_SEND_DIRECT_RESP_32	U(0x84000070)
#define FFA_MSG_SEND_DIRECT_RESP_64	U(0xC4000070)
#define FFA_MEM_DONATE_32		U(0x84000071)
#define FFA_MEM_DONATE_64		U(0xC4000071)
#define FFA_MEM_LEND_32			U(0x84000072)
#define FFA_MEM_LEND_64			U(0xC4000072)
#define FFA_MEM_SHARE_32		U(0x84000073)
#define FFA_MEM_SHARE_64		U(0xC4000073)
#define FFA_MEM_RETRIEVE_REQ_32		U(0x84000074)
#define FFA_MEM_RETRIEVE_REQ_64		U(0xC4000074)
#define FFA_MEM_RETRIEVE_RESP		U(0x84000075)
#define FFA_MEM_RELINQUISH		U(0x84000076)
#define FFA_MEM_RECLAIM			U(0x84000077)
#define FFA_MEM_OP_PAUSE		U(0x84000078)
#define FFA_MEM_OP_RESUME		U(0x84000079)
#define FFA_MEM_FRAG_RX			U(0x8400007A)
#define FFA_MEM_FRAG_TX			U(0x8400007B)
#define FFA_NORMAL_WORLD_RESUME		U(0x8400007C)
#define FFA_NOTIFICATION_BITMAP_CREATE	U(0x8400007D)
#define FFA_NOTIFICATION_BITMAP_DESTROY	U(0x8400007E)
#define FFA_NOTIFICATION_BIND		U(0x8400007F)
#define FFA_NOTIFICATION_UNBIND		U(0x84000080)
#define FFA_NOTIFICATION_SET		U(0x84000081)
#define FFA_NOTIFICATION_GET		U(0x84000082)
#define FFA_NOTIFICATION_INFO_GET_32	U(0x84000083)
#define FFA_NOTIFICATION_INFO_GET_64	U(0xC4000083)
#define FFA_RX_ACQUIRE			U(0x84000084)
#define FFA_SPM_ID_GET			U(0x84000085)
#define FFA_MSG_SEND2			U(0x84000086)
#define FFA_SECONDARY_EP_REGISTER_64	U(0xC4000087)
#define FFA_MEM_PERM_GET_32		U(0x84000088)
#define FFA_MEM_PERM_GET_64		U(0xC4000088)
#define FFA_MEM_PERM_SET_32		U(0x84000089)
#define FFA_MEM_PERM_SET_64		U(0xC4000089)
#define FFA_CONSOLE_LOG_32		U(0x8400008A)
#define FFA_CONSOLE_LOG_64		U(0xC400008A)
#define FFA_PARTITION_INFO_GET_REGS_64	U(0xC400008B)
#define FFA_EL3_INTR_HANDLE		U(0x8400008C)
#define FFA_MSG_SEND_DIRECT_REQ2_64	U(0xC400008D)
#define FFA_MSG_SEND_DIRECT_RESP2_64	U(0xC400008E)

/* Framework direct messages: w2 bit 31 set, type in bits 7..0 */
#define FFA_MSG_FLAG_FRAMEWORK		BIT(31)
#define FFA_MSG_TYPE_MASK		GENMASK_32(7, 0)
#define FFA_MSG_PSCI			U(0x0)
#define FFA_MSG_SEND_VM_CREATED		U(0x4)
#define FFA_MSG_RESP_VM_CREATED		U(0x5)
#define FFA_MSG_SEND_VM_DESTROYED	U(0x6)
#define FFA_MSG_RESP_VM_DESTROYED	U(0x7)
#define FFA_MSG_VERSION_REQ		U(0x8)
#define FFA_MSG_VERSION_RESP		U(0x9)

/* Partition properties (FFA_PARTITION_INFO_GET) */
#define FFA_PART_PROP_DIRECT_REQ_RECV	BIT(0)
#define FFA_PART_PROP_DIRECT_REQ_SEND	BIT(1)
#define FFA_PART_PROP_INDIRECT_MSGS	BIT(2)
#define FFA_PART_PROP_RECV_NOTIF	BIT(3)
#define FFA_PART_PROP_AARCH64_STATE	BIT(8)

/* Memory access permissions (EMAD byte 2) */
#define FFA_MEM_ACC_RO			BIT(0)
#define FFA_MEM_ACC_RW			BIT(1)
#define FFA_MEM_ACC_NX			BIT(2)
#define FFA_MEM_ACC_EXE			BIT(3)
#define FFA_MEM_ACC_MASK		GENMASK_32(3, 0)

/* Memory region attributes: Normal, write-back, inner shareable */
#define FFA_NORMAL_MEM_REG_ATTR		U(0x2F)

/* Transaction flags */
#define FFA_MEMORY_REGION_FLAG_CLEAR			BIT(0)
#define FFA_MEMORY_REGION_FLAG_TIME_SLICE		BIT(1)
#define FFA_MEMORY_REGION_FLAG_CLEAR_RELINQUISH		BIT(2)
#define FFA_MEMORY_REGION_TRANSACTION_TYPE_MASK		GENMASK_32(4, 3)
#define FFA_MEMORY_REGION_TRANSACTION_TYPE_SHARE	SHIFT_U32(1, 3)
#define FFA_MEMORY_REGION_TRANSACTION_TYPE_LEND		SHIFT_U32(2, 3)
#define FFA_MEMORY_REGION_TRANSACTION_TYPE_DONATE	SHIFT_U32(3, 3)

/* Handle bits */
#define FFA_MEMORY_HANDLE_HYPERVISOR_BIT	BIT64(63)
#define FFA_MEMORY_HANDLE_SECURE_BIT		BIT64(45)
#define FFA_MEMORY_HANDLE_NON_SECURE_BIT	BIT64(44)

/* The same error codes under the Linux names (include/linux/arm_ffa.h) */
#define FFA_RET_SUCCESS			FFA_OK
#define FFA_RET_NOT_SUPPORTED		FFA_NOT_SUPPORTED
#define FFA_RET_INVALID_PARAMETERS	FFA_INVALID_PARAMETERS
#define FFA_RET_NO_MEMORY		FFA_NO_MEMORY
#define FFA_RET_BUSY			FFA_BUSY
#define FFA_RET_INTERRUPTED		FFA_INTERRUPTED
#define FFA_RET_DENIED			FFA_DENIED
#define FFA_RET_RETRY			FFA_RETRY
#define FFA_RET_ABORTED			FFA_ABORTED
#define FFA_RET_NO_DATA			FFA_NO_DATA

/* FFA_VERSION input: bit 31 must be zero (TF-A name) */
#define FFA_VERSION_BIT31_MASK		BIT(31)

/* Special value for MBZ parameters */
#define FFA_PARAM_MBZ			U(0x0)

/* FF-A "pages" are always 4 KiB, whatever the translation granule */
#define FFA_PAGE_SIZE			U(4096)

/* Endpoint ids: bit 15 set for the secure world; the SPMD's own id */
#define FFA_SECURE_ENDPOINT_BIT		BIT(15)
#define SPMD_DIRECT_MSG_ENDPOINT_ID	U(0xFFFF)

/* Source / destination packing of w1 in direct messages */
#define FFA_SRC_ENDPOINT_SHIFT		U(16)
#define FFA_ENDPOINT_ID_MASK		GENMASK_32(15, 0)

/* FFA_FEATURES: w1 bit 31 set = function id, else a feature id */
#define FFA_FEATURES_FUNC_ID_MASK	BIT32(31)
#define FFA_FEATURES_FEATURE_ID_MASK	GENMASK_32(7, 0)
#define FFA_FEATURE_NOTIF_PEND_INTR	U(0x1)
#define FFA_FEATURE_SCHEDULE_RECV_INTR	U(0x2)
#define FFA_FEATURE_MANAGED_EXIT_INTR	U(0x3)

/* FFA_FEATURES(FFA_RXTX_MAP) w2: minimum size/alignment, maximum pages (v1.2) */
#define FFA_FEAT_RXTX_MIN_SZ_4K		U(0)
#define FFA_FEAT_RXTX_MIN_SZ_64K	U(1)
#define FFA_FEAT_RXTX_MIN_SZ_16K	U(2)
#define FFA_FEAT_RXTX_MIN_SZ_MASK	GENMASK_32(1, 0)
#define FFA_FEAT_RXTX_MAX_PAGES_SHIFT	U(16)

/* FFA_FEATURES(FFA_MEM_DONATE/LEND/SHARE) w2: caller-allocated buffer accepted */
#define FFA_FEATURES_MEM_DYNAMIC_BUFFER_SUPPORT	BIT(0)

/* FFA_FEATURES(FFA_MEM_RETRIEVE_REQ) w2 (FF-A v1.2 memory management, Hafnium names) */
#define FFA_FEATURES_MEM_RETRIEVE_REQ_BUFFER_SUPPORT	BIT(0)
#define FFA_FEATURES_MEM_RETRIEVE_REQ_NS_SUPPORT	BIT(1)
#define FFA_FEATURES_MEM_RETRIEVE_REQ_HYPERVISOR_SUPPORT BIT(2)

/* FFA_RXTX_MAP: w3 bits 5..0 = page count, the rest MBZ */
#define FFA_RXTX_MAP_PAGE_COUNT_MASK	GENMASK_32(5, 0)

/* FFA_PARTITION_INFO_GET w5: return the count only (v1.1) */
#define FFA_PARTITION_INFO_GET_COUNT_FLAG	BIT(0)
#define FFA_UUID_SIZE			16

/* Partition properties, continued */
#define FFA_PART_PROP_IS_PE_ID		SHIFT_U32(0, 4)
#define FFA_PART_PROP_NOTIF_CREATED	BIT(6)
#define FFA_PART_PROP_NOTIF_DESTROYED	BIT(7)
#define FFA_PART_PROP_DIRECT_REQ2_RECV	BIT(9)
#define FFA_PART_PROP_DIRECT_REQ2_SEND	BIT(10)

/* Memory access permissions fields (EMAD byte 2, Hafnium names) */
#define FFA_DATA_ACCESS_OFFSET		U(0)
#define FFA_DATA_ACCESS_MASK		GENMASK_32(1, 0)
#define FFA_INSTRUCTION_ACCESS_OFFSET	U(2)
#define FFA_INSTRUCTION_ACCESS_MASK	GENMASK_32(3, 2)
#define FFA_MEM_ACC_RESERVED_MASK	GENMASK_32(7, 4)

enum ffa_data_access {
	FFA_DATA_ACCESS_NOT_SPECIFIED,
	FFA_DATA_ACCESS_RO,
	FFA_DATA_ACCESS_RW,
	FFA_DATA_ACCESS_RESERVED,
};

enum ffa_instruction_access {
	FFA_INSTRUCTION_ACCESS_NOT_SPECIFIED,
	FFA_INSTRUCTION_ACCESS_NX,
	FFA_INSTRUCTION_ACCESS_X,
	FFA_INSTRUCTION_ACCESS_RESERVED,
};

/* Memory region attributes fields (Hafnium names); bit 6 is the NS bit (v1.1) */
#define FFA_MEMORY_SHAREABILITY_OFFSET	U(0)
#define FFA_MEMORY_SHAREABILITY_MASK	GENMASK_32(1, 0)
#define FFA_MEMORY_CACHEABILITY_OFFSET	U(2)
#define FFA_MEMORY_CACHEABILITY_MASK	GENMASK_32(3, 2)
#define FFA_MEMORY_TYPE_OFFSET		U(4)
#define FFA_MEMORY_TYPE_MASK		GENMASK_32(5, 4)
#define FFA_MEMORY_SECURITY_MASK	BIT(6)
#define FFA_MEMORY_ATTRIBUTES_RESERVED_MASK	GENMASK_32(15, 7)

enum ffa_memory_type {
	FFA_MEMORY_NOT_SPECIFIED_MEM,
	FFA_MEMORY_DEVICE_MEM,
	FFA_MEMORY_NORMAL_MEM,
};

/* Transaction flags, continued */
#define FFA_MEMORY_REGION_TRANSACTION_TYPE_UNSPECIFIED	SHIFT_U32(0, 3)
#define FFA_MEMORY_REGION_ADDRESS_RANGE_HINT_MASK	GENMASK_32(8, 5)
#define FFA_MEMORY_REGION_ADDRESS_RANGE_HINT_VALID	BIT(9)
#define FFA_MEMORY_REGION_FLAG_BYPASS_BORROWERS_CHECK	BIT(10)

/* EMAD flags (byte 3) */
#define FFA_MEM_FLAG_NON_RETRIEVAL_BORROWER	BIT(0)

/* Handle reserved as "no handle" */
#define FFA_MEMORY_HANDLE_INVALID	UINT64_C(0xFFFFFFFFFFFFFFFF)

/* Constituent: run of 4 KiB pages */
struct ffa_address_range {
	uint64_t address;
	uint32_t page_count;
	uint32_t reserved_mbz;
};

/* Composite memory region descriptor */
struct ffa_mem_region {
	uint32_t total_page_count;
	uint32_t address_range_count;
	uint64_t reserved;
	struct ffa_address_range address_range_array[];
};

/* Receiver and its access byte, first 4 bytes of an EMAD */
struct ffa_mem_access_perm {
	uint16_t endpoint_id;
	uint8_t perm;
	uint8_t flags;
};

/* EMAD of FF-A v1.0 / v1.1 (16 bytes) */
struct ffa_mem_access {
	struct ffa_mem_access_perm access_perm;
	uint32_t region_offs;	/* composite descriptor offset */
	uint64_t reserved;
};

/* The implementation-defined value added in v1.2 */
struct ffa_mem_access_impdef {
	uint64_t val[2];
};

/* EMAD of FF-A v1.2 and later (32 bytes) */
struct ffa_mem_access_1_2 {
	struct ffa_mem_access_perm access_perm;
	uint32_t region_offs;
	struct ffa_mem_access_impdef impdef;
	uint64_t reserved;
};

/* Transaction descriptor header, v1.0 (32 bytes, EMADs follow at 32) */
struct ffa_mem_transaction_1_0 {
	uint16_t sender_id;
	uint8_t mem_reg_attr;
	uint8_t reserved0;
	uint32_t flags;
	uint64_t global_handle;
	uint64_t tag;
	uint32_t reserved1;
	uint32_t mem_access_count;
	struct ffa_mem_access mem_access_array[];
};

/* Transaction descriptor header, v1.1+ (48 bytes, EMADs at mem_access_offs) */
struct ffa_mem_transaction_1_1 {
	uint16_t sender_id;
	uint16_t mem_reg_attr;
	uint32_t flags;
	uint64_t global_handle;
	uint64_t tag;
	uint32_t mem_access_size;
	uint32_t mem_access_count;
	uint32_t mem_access_offs;
	uint8_t reserved[12];
};

/* Relinquish descriptor (in the caller's TX buffer) */
struct ffa_mem_relinquish {
	uint64_t handle;
	uint32_t flags;
	uint32_t endpoint_count;
	uint16_t endpoint_id_array[];
};

/* Partition information descriptor, v1.1+ form (24 bytes) */
struct ffa_partition_info_x {
	uint16_t id;
	uint16_t execution_context;
	uint32_t partition_properties;
	uint8_t uuid[16];
};

#endif /* __TZEMU_FFA_H */
