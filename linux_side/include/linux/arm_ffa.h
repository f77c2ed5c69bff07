/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: Arm Firmware Framework for A-profile (FF-A) - the
 * function ids, error codes, version encoding and memory-transaction
 * descriptor layouts the Linux FF-A driver uses (Linux v6.18).
 *
 * Every FF-A call is a fast SMC of the Standard Secure Service owner (4):
 * 32-bit ids are 0x84000000 | n, 64-bit ids 0xC4000000 | n.
 */
#ifndef _LINUX_ARM_FFA_H
#define _LINUX_ARM_FFA_H

#include <linux/types.h>
#include <linux/bits.h>
#include <linux/arm-smccc.h>
#include <linux/sizes.h>

#define FFA_SMC(calling_convention, func_num)				\
	ARM_SMCCC_CALL_VAL(ARM_SMCCC_FAST_CALL, (calling_convention),	\
			   ARM_SMCCC_OWNER_STANDARD, (func_num))
#define FFA_SMC_32(func_num)	FFA_SMC(ARM_SMCCC_SMC_32, (func_num))
#define FFA_SMC_64(func_num)	FFA_SMC(ARM_SMCCC_SMC_64, (func_num))

/* Function ids; FFA_FN64_* are the SMC64 variants. */
#define FFA_ERROR			FFA_SMC_32(0x60)
#define FFA_SUCCESS			FFA_SMC_32(0x61)
#define FFA_FN64_SUCCESS		FFA_SMC_64(0x61)
#define FFA_INTERRUPT			FFA_SMC_32(0x62)
#define FFA_VERSION			FFA_SMC_32(0x63)
#define FFA_FEATURES			FFA_SMC_32(0x64)
#define FFA_RX_RELEASE			FFA_SMC_32(0x65)
#define FFA_RXTX_MAP			FFA_SMC_32(0x66)
#define FFA_FN64_RXTX_MAP		FFA_SMC_64(0x66)
#define FFA_RXTX_UNMAP			FFA_SMC_32(0x67)
#define FFA_PARTITION_INFO_GET		FFA_SMC_32(0x68)
#define FFA_ID_GET			FFA_SMC_32(0x69)
#define FFA_MSG_POLL			FFA_SMC_32(0x6A)
#define FFA_MSG_WAIT			FFA_SMC_32(0x6B)
#define FFA_YIELD			FFA_SMC_32(0x6C)
#define FFA_RUN				FFA_SMC_32(0x6D)
#define FFA_MSG_SEND			FFA_SMC_32(0x6E)
#define FFA_MSG_SEND_DIRECT_REQ		FFA_SMC_32(0x6F)
#define FFA_FN64_MSG_SEND_DIRECT_REQ	FFA_SMC_64(0x6F)
#define FFA_MSG_SEND_DIRECT_RESP	FFA_SMC_32(0x70)
#define FFA_FN64_MSG_SEND_DIRECT_RESP	FFA_SMC_64(0x70)
#define FFA_MEM_DONATE			FFA_SMC_32(0x71)
#define FFA_FN64_MEM_DONATE		FFA_SMC_64(0x71)
#define FFA_MEM_LEND			FFA_SMC_32(0x72)
#define FFA_FN64_MEM_LEND		FFA_SMC_64(0x72)
#define FFA_MEM_SHARE			FFA_SMC_32(0x73)
#define FFA_FN64_MEM_SHARE		FFA_SMC_64(0x73)
#define FFA_MEM_RETRIEVE_REQ		FFA_SMC_32(0x74)
#define FFA_FN64_MEM_RETRIEVE_REQ	FFA_SMC_64(0x74)
#define FFA_MEM_RETRIEVE_RESP		FFA_SMC_32(0x75)
#define FFA_MEM_RELINQUISH		FFA_SMC_32(0x76)
#define FFA_MEM_RECLAIM			FFA_SMC_32(0x77)
#define FFA_MEM_OP_PAUSE		FFA_SMC_32(0x78)
#define FFA_MEM_OP_RESUME		FFA_SMC_32(0x79)
#define FFA_MEM_FRAG_RX			FFA_SMC_32(0x7A)
#define FFA_MEM_FRAG_TX			FFA_SMC_32(0x7B)
#define FFA_NORMAL_WORLD_RESUME		FFA_SMC_32(0x7C)
#define FFA_NOTIFICATION_BITMAP_CREATE	FFA_SMC_32(0x7D)
#define FFA_NOTIFICATION_BITMAP_DESTROY	FFA_SMC_32(0x7E)
#define FFA_NOTIFICATION_BIND		FFA_SMC_32(0x7F)
#define FFA_NOTIFICATION_UNBIND		FFA_SMC_32(0x80)
#define FFA_NOTIFICATION_SET		FFA_SMC_32(0x81)
#define FFA_NOTIFICATION_GET		FFA_SMC_32(0x82)
#define FFA_NOTIFICATION_INFO_GET	FFA_SMC_32(0x83)
#define FFA_FN64_NOTIFICATION_INFO_GET	FFA_SMC_64(0x83)
#define FFA_RX_ACQUIRE			FFA_SMC_32(0x84)
#define FFA_SPM_ID_GET			FFA_SMC_32(0x85)
#define FFA_MSG_SEND2			FFA_SMC_32(0x86)
#define FFA_SECONDARY_EP_REGISTER	FFA_SMC_32(0x87)
#define FFA_FN64_SECONDARY_EP_REGISTER	FFA_SMC_64(0x87)
#define FFA_MEM_PERM_GET		FFA_SMC_32(0x88)
#define FFA_FN64_MEM_PERM_GET		FFA_SMC_64(0x88)
#define FFA_MEM_PERM_SET		FFA_SMC_32(0x89)
#define FFA_FN64_MEM_PERM_SET		FFA_SMC_64(0x89)
#define FFA_CONSOLE_LOG			FFA_SMC_32(0x8A)
#define FFA_FN64_CONSOLE_LOG		FFA_SMC_64(0x8A)
#define FFA_PARTITION_INFO_GET_REGS	FFA_SMC_64(0x8B)	/* 64-bit only */
#define FFA_EL3_INTR_HANDLE		FFA_SMC_32(0x8C)
#define FFA_MSG_SEND_DIRECT_REQ2	FFA_SMC_64(0x8D)	/* 64-bit only */
#define FFA_MSG_SEND_DIRECT_RESP2	FFA_SMC_64(0x8E)	/* 64-bit only */

/* Error codes, found in w2 of an FFA_ERROR answer (two's complement). */
#define FFA_RET_SUCCESS			(0)
#define FFA_RET_NOT_SUPPORTED		(-1)
#define FFA_RET_INVALID_PARAMETERS	(-2)
#define FFA_RET_NO_MEMORY		(-3)
#define FFA_RET_BUSY			(-4)
#define FFA_RET_INTERRUPTED		(-5)
#define FFA_RET_DENIED			(-6)
#define FFA_RET_RETRY			(-7)
#define FFA_RET_ABORTED			(-8)
#define FFA_RET_NO_DATA			(-9)

/* Version words: major in bits 30..16, minor in bits 15..0, bit 31 clear. */
#define FFA_MAJOR_VERSION_MASK		GENMASK(30, 16)
#define FFA_MINOR_VERSION_MASK		GENMASK(15, 0)
#define FFA_MAJOR_VERSION(x)		(((x) & FFA_MAJOR_VERSION_MASK) >> 16)
#define FFA_MINOR_VERSION(x)		((x) & FFA_MINOR_VERSION_MASK)
#define FFA_PACK_VERSION_INFO(major, minor)			\
	((((major) << 16) & FFA_MAJOR_VERSION_MASK) |		\
	 ((minor) & FFA_MINOR_VERSION_MASK))
#define FFA_VERSION_1_0			FFA_PACK_VERSION_INFO(1, 0)
#define FFA_VERSION_1_1			FFA_PACK_VERSION_INFO(1, 1)
#define FFA_VERSION_1_2			FFA_PACK_VERSION_INFO(1, 2)

/* FF-A pages are always 4 KiB, whatever the kernel page size. */
#define FFA_PAGE_SIZE			4096

/*
 * One constituent: a run of 4 KiB pages starting at a 4 KiB-aligned
 * (intermediate) physical address.
 */
struct ffa_mem_region_addr_range {
	u64 address;
	u32 pg_cnt;
	u32 reserved;
};

/* Composite memory region: page total, then the constituent array. */
struct ffa_composite_mem_region {
	u32 total_pg_cnt;
	u32 addr_range_cnt;
	u64 reserved;
	struct ffa_mem_region_addr_range constituents[];
};

/*
 * Endpoint memory access descriptor (EMAD), one per receiver.  For FF-A
 * v1.0/v1.1 only the first 16 bytes travel (receiver .. composite_off plus
 * 8 reserved bytes); from v1.2 the whole 32 bytes, including impdef_val.
 */
struct ffa_mem_region_attributes {
	u16 receiver;		/* endpoint that gets access */
	u8 attrs;		/* FFA_MEM_RO/RW/NO_EXEC/EXEC */
	u8 flag;		/* FFA_MEM_RETRIEVE_SELF_BORROWER */
	u32 composite_off;	/* offset of the composite region from the descriptor start */
	u8 impdef_val[16];
	u64 reserved;
};

/*
 * Memory transaction descriptor header in the v1.1+ form (48 bytes).  A
 * v1.0 header is 32 bytes: attributes is one byte followed by a reserved
 * byte, ep_mem_size is reserved and the EMAD array starts at offset 32.
 */
struct ffa_mem_region {
	u16 sender_id;
	u16 attributes;		/* FFA_MEM_NORMAL | ... ; 0 for LEND */
	u32 flags;		/* FFA_MEM_CLEAR, FFA_MEM_RETRIEVE_TYPE_* ... */
	u64 handle;		/* 0 when sending */
	u64 tag;		/* OP-TEE protected memory: the use case */
	u32 ep_mem_size;	/* size of one EMAD */
	u32 ep_count;		/* number of EMADs */
	u32 ep_mem_offset;	/* where the EMAD array starts */
	u32 reserved[3];
};

/* EMAD attrs: data and instruction access permissions */
#define FFA_MEM_RO			BIT(0)
#define FFA_MEM_RW			BIT(1)
#define FFA_MEM_NO_EXEC			BIT(2)
#define FFA_MEM_EXEC			BIT(3)

/* EMAD flag for a retrieve request */
#define FFA_MEM_RETRIEVE_SELF_BORROWER	BIT(0)

/* Memory region attributes: type in bits 5..4 */
#define FFA_MEM_NORMAL			BIT(5)
#define FFA_MEM_DEVICE			BIT(4)
/* ... cacheability (normal) in bits 3..2 */
#define FFA_MEM_WRITE_BACK		(3 << 2)
#define FFA_MEM_NON_CACHEABLE		(1 << 2)
/* ... or device attributes in bits 3..2 */
#define FFA_DEV_nGnRnE			(0 << 2)
#define FFA_DEV_nGnRE			(1 << 2)
#define FFA_DEV_nGRE			(2 << 2)
#define FFA_DEV_GRE			(3 << 2)
/* ... shareability in bits 1..0 */
#define FFA_MEM_NON_SHAREABLE		(0)
#define FFA_MEM_OUTER_SHAREABLE		(2)
#define FFA_MEM_INNER_SHAREABLE		(3)

/* Transaction flags */
#define FFA_MEM_CLEAR			BIT(0)
#define FFA_TIME_SLICE_ENABLE		BIT(1)
#define FFA_MEM_RETRIEVE_TYPE_IN_RESP	(0 << 3)
#define FFA_MEM_RETRIEVE_TYPE_SHARE	(1 << 3)
#define FFA_MEM_RETRIEVE_TYPE_LEND	(2 << 3)
#define FFA_MEM_RETRIEVE_TYPE_DONATE	(3 << 3)
#define FFA_MEM_RETRIEVE_ADDR_ALIGN_HINT	BIT(9)
#define FFA_MEM_RETRIEVE_ADDR_ALIGN(x)	((x) << 5)

/*
 * Partition information (FFA_PARTITION_INFO_GET): property bits and the
 * little-endian descriptor the SPMC writes into the caller's RX buffer:
 * 8 bytes in FF-A v1.0, 24 bytes (with the UUID) from v1.1.  The struct is
 * driver.c's local layout of one descriptor.
 */
#define FFA_PARTITION_DIRECT_RECV	BIT(0)
#define FFA_PARTITION_DIRECT_SEND	BIT(1)
#define FFA_PARTITION_INDIRECT_MSG	BIT(2)
#define FFA_PARTITION_NOTIFICATION_RECV	BIT(3)
#define FFA_PARTITION_AARCH64_EXEC	BIT(8)
#define FFA_PARTITION_DIRECT_REQ2_RECV	BIT(9)
#define FFA_PARTITION_DIRECT_REQ2_SEND	BIT(10)

struct ffa_partition_info_le {
	u16 id;
	u16 exec_ctxt;
	u32 properties;
	u8 uuid[16];		/* v1.1+ only */
};

/*
 * drivers/firmware/arm_ffa/driver.c: the driver's own version (it asks for
 * 1.2 and accepts 1.0 and later of the same major), the direct-message
 * target word, the FFA_FEATURES(FFA_RXTX_MAP) answer, the partition-info
 * flag, the 64-bit handle split and the version tests of the descriptor
 * layout.
 */
#define FFA_DRIVER_VERSION		FFA_VERSION_1_2
#define FFA_MIN_VERSION			FFA_VERSION_1_0

#define SENDER_ID_MASK			GENMASK(31, 16)
#define RECEIVER_ID_MASK		GENMASK(15, 0)
#define SENDER_ID(x)			(((x) & SENDER_ID_MASK) >> 16)
#define RECEIVER_ID(x)			((x) & RECEIVER_ID_MASK)
#define PACK_TARGET_INFO(s, r)		\
	((((s) << 16) & SENDER_ID_MASK) | ((r) & RECEIVER_ID_MASK))

/* w2[1:0] of FFA_FEATURES(FFA_RXTX_MAP): minimum buffer size and alignment */
#define RXTX_MAP_MIN_BUFSZ_MASK		GENMASK(1, 0)
#define RXTX_MAP_MIN_BUFSZ(x)		((x) & RXTX_MAP_MIN_BUFSZ_MASK)
/* its values (driver.c compares with the bare numbers; names as in TF-A) */
#define FFA_FEAT_RXTX_MIN_SZ_4K		0
#define FFA_FEAT_RXTX_MIN_SZ_64K	1
#define FFA_FEAT_RXTX_MIN_SZ_16K	2
/* buffer size when FFA_FEATURES(FFA_RXTX_MAP) is not answered */
#define RXTX_BUFFER_SIZE		SZ_4K

/* w5 bit 0 of FFA_PARTITION_INFO_GET (v1.1+): return the count only */
#define PARTITION_INFO_GET_RETURN_COUNT_ONLY	BIT(0)

#define HANDLE_LOW_MASK			GENMASK_ULL(31, 0)
#define HANDLE_HIGH_MASK		GENMASK_ULL(63, 32)
#define HANDLE_LOW(x)			((x) & HANDLE_LOW_MASK)
#define HANDLE_HIGH(x)			(((x) & HANDLE_HIGH_MASK) >> 32)
#define PACK_HANDLE(l, h)		\
	(((u64)(l) & HANDLE_LOW_MASK) | (((u64)(h) << 32) & HANDLE_HIGH_MASK))

/* v1.1+: EMAD size/offset fields in the header; v1.2+: 32-byte EMADs */
#define FFA_MEM_REGION_HAS_EP_MEM_OFFSET(version)	((version) > FFA_VERSION_1_0)
#define FFA_EMAD_HAS_IMPDEF_FIELD(version)		((version) >= FFA_VERSION_1_2)

#endif /* _LINUX_ARM_FFA_H */
