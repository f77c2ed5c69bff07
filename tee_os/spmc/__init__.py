"""FF-A SPMC core of the secure OS: OP-TEE acting as the S-EL1 SPM Core (pure Python).

``Spmc.handle(regs)`` serves one FF-A call of the normal-world endpoint as the SPMD forwards
it; ``Spmc.retrieve_for_sp`` / ``Spmc.relinquish_for_sp`` are the secure OS's own (implicit)
retrieve and relinquish, as OP-TEE's ``mobj_ffa`` does them.  Rules and error codes follow
/work/shared/abi/ffa_spec.md §4 (``descriptors.RULES``); see ``docs`` of each handler.

Implemented beyond the reference OP-TEE S-EL1 SPMC (which answers NOT_SUPPORTED, §5.4):

* FFA_MEM_DONATE_32/64 (to a secure partition; the receiver owns the pages after retrieval),
* FFA_MEM_RETRIEVE_REQ_32/64 from the normal world: the hypervisor form (EMAD count 0) returns
  the whole descriptor, fragmented through FFA_MEM_FRAG_RX when it exceeds RX; borrower-form
  requests are checked against every rule of §4.4 (the normal world never borrows here),
* FFA_MEM_FRAG_RX (continuation of a retrieve response), FFA_MEM_RELINQUISH from NS,
* FFA_ID_GET (the SPMD normally answers it), the zero-memory flag of FFA_MEM_RECLAIM (OP-TEE
  rejects any w3), zero-before-retrieve / zero-after-relinquish flags, FFA_FEATURES for
  every implemented call (``SpmcConfig.optee_features`` restores OP-TEE's list),
* ownership / retrieval bookkeeping of §4.1-§4.2 (OP-TEE keeps only reference counts).

Choices where the references differ (each overridable per rule via
``SpmcConfig.error_overrides``): a descriptor may be in the TX buffer or in a caller-allocated
NS buffer (x3 / w4, as OP-TEE; FRAG_TX then reads the same buffer); no RX/TX -> DENIED (S4,
OP-TEE); range outside NS DDR -> DENIED (S34, Hafnium; OP-TEE 4.9 says INVALID_PARAMETERS);
SHARE with attributes other than 0x2F -> DENIED (S20); OP-TEE's own EMAD must be exactly RW
(O5); a bad fragment aborts the pending transaction (OP-TEE, Hafnium) while a FRAG_TX for an
unknown / complete handle or from another sender changes nothing; protmem use-case semantics
of the tag (and contiguity) belong to ``on_lend``.
"""
from .descriptors import (FfaError, Receiver, build_mem_region, build_partition_info,
                          build_relinquish, parse_mem_region, parse_partition_info,
                          parse_relinquish)
from .memory import MemTransaction, OwnershipSpan
from .spmc import OPTEE_UUID, Spmc, SpmcConfig

__all__ = ["Spmc", "SpmcConfig", "MemTransaction", "OwnershipSpan", "FfaError", "Receiver",
           "OPTEE_UUID", "build_mem_region", "parse_mem_region", "build_relinquish",
           "parse_relinquish", "build_partition_info", "parse_partition_info"]
