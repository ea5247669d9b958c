/*
 * Orion patches 0007 and 0008: the pairing table, one layout for both sides.
 *
 * This file is the contract between the patched emulator (beam_dtrace_build/build.sh copies
 * it into erts/emulator/beam/ next to patch 0007, which includes it) and Orion
 * (userspace/beam/pair_table.cc reads and writes it with process_vm_readv/writev). It holds
 * plain C types only, so that both compile it as is.
 *
 * What pairing is: with the `erlang:orion__call` USDT probe enabled (its semaphore, which
 * the kernel counts per attached uprobe and drops when the attaching process dies), the
 * emulator (the emu flavor, and since patch 0012 the x86_64 JIT, in both of its frame
 * layouts) pairs each call of a wanted function with its return itself and fires ONE
 * probe per call, with integer arguments: which function (owner and slot), how the call
 * ended, its wall time and its on-CPU time in ns. Without it, a targeted call costs two
 * traps into the kernel, two string arguments that BPF copies and hashes, and a
 * per-process stack kept in a BPF hash map (docs/performance.md, "Where a targeted call's
 * time goes").
 *
 * Where (patch 0008): the emulator puts an ERTS breakpoint (the mechanism of call_time
 * tracing) in each function a record's patterns match, and the breakpoint pushes a
 * one-word return trap on the process's stack; code that is not targeted runs exactly as
 * without a capture. Orion wakes the emulator to (re)install the breakpoints by writing
 * ERTS_ORION_PAIR_WAKE, an int, into `wake_fd` (through /proc/PID/fd: the write end of the
 * pipe ERTS's signal dispatcher thread reads); the emulator then installs, on a scheduler,
 * with thread progress blocked, the breakpoints of every record, and writes `installed`:
 * a capture is live once its record's `installed` equals its `request`. Modules loaded
 * later get their breakpoints before their code becomes callable.
 *
 * Owners. Up to ERTS_ORION_PAIR_OWNERS captures pair at once, each in its own record:
 *   - Orion writes `pid`, `max_slots`, `npatterns`, `pattern[]` while the record is free
 *     (`request == 0`), then `request` (a new generation, never 0, different from
 *     `active`), then wakes the emulator. Releasing: `request = 0`, then a wake (the emulator
 *     removes breakpoints no record wants). Orion never writes anything else.
 *   - The emulator owns the rest. The first call that finds `request != active` resets the
 *     record under `lock` (active = 0 while it clears, then active = request), so no stale
 *     key, name or counter of an earlier capture survives into a new one. Readers check
 *     `active` before and after a lookup (a seqlock), and a frame records the generation
 *     it was pushed in: a call of an earlier capture is dropped, never misattributed.
 * Functions. `key[]` caches, per function whose breakpoint fired, whether the
 *   owner's patterns want it and its slot (an open-addressing table over the module,
 *   function and arity terms, filled under `lock`, read without it). A wanted function gets
 *   the next slot (< max_slots) and its name, formatted as the function probes print it
 *   ("mod:fun/1"), in `name[slot]`, once; the probe then carries (owner << 16) | slot.
 * Patterns are atom names as UTF-8 bytes (not the printed, quoted form), compared with the
 *   atom table's bytes.
 *
 * Return sites (patch 0009). Stock OTP fires no function__return from deallocate_return, the
 *   most common return instruction; BPF pairing needs it. Its probe sits behind a site the
 *   emulator patches at run time (a 5-byte nop, or a jmp to the probe code), so that it costs
 *   nothing while no capture runs. Every wake also syncs them: the emulator reads
 *   `sync_request`, makes the sites fire iff the enable table (patch 0003) is filtering, i.e.
 *   an Orion capture holds it, and writes `return_sites` then `sync_done`. Orion bumps
 *   `sync_request` after changing the enable table and waits for `sync_done` to reach it
 *   before it attaches anything.
 *
 * Batches (patch 0010). While `erlang:orion__calls` is attached, the emulator fires it
 *   instead of orion__call: each scheduler thread keeps the calls that ended
 *   (ErtsOrionPairCall) and fires one probe per ERTS_ORION_PAIR_BATCH calls, or when its oldest
 *   one is ERTS_ORION_PAIR_BATCH_NS old. orion__call's semaphore still says whether a capture
 *   is attached at all. Before reading its final results Orion bumps `flush_request` and
 *   wakes the emulator; every scheduler fires what it holds, and the emulator writes
 *   `flush_done`.
 *
 * Pid layout (version 5). `orion top` keys Erlang processes by their pid's number and serial,
 *   and reads some pids as the emulator's pid terms (Process.common.id, orion__mailbox's
 *   receiver). How a term holds them differs between releases: OTP 24-25 keep the pid's data
 *   (serial << 15 | number) as is in the low 32 bits of the term; OTP 26 on keep the process
 *   table's scrambled form of it (erts_ptab_make_id: the low bits hold the table index with
 *   its two parts swapped) above the tag, with a 28-bit number. The emulator writes
 *   `pid_layout` once, when its process table exists, and Orion decodes every release's terms
 *   with the one rule ErtsOrionPidLayout states (`data_bits` 0: not written yet).
 *
 * Layout changes bump ERTS_ORION_PAIR_VERSION; Orion checks magic, version and size.
 */
#ifndef ERL_ORION_PAIR_H__
#define ERL_ORION_PAIR_H__

#include <stdint.h>

#define ERTS_ORION_PAIR_MAGIC 0x5250524fU /* "ORPR" */
#define ERTS_ORION_PAIR_VERSION 5
#define ERTS_ORION_PAIR_OWNERS 4
#define ERTS_ORION_PAIR_PATTERNS 16
#define ERTS_ORION_PAIR_ATOM_LEN 256 /* bytes of a pattern's atom name (max 255 + NUL) */
#define ERTS_ORION_PAIR_SLOTS 256    /* measured functions per owner */
#define ERTS_ORION_PAIR_KEYS 512     /* functions looked up per owner (a power of two) */
#define ERTS_ORION_PAIR_MFA_LEN 160  /* bytes of a slot's name */
#define ERTS_ORION_PAIR_FRAMES 32    /* calls in flight per Erlang process */

/* patch 0010: calls per orion__calls probe, and the age at which a scheduler's batch is
 * fired even if not full (checked when a paired call returns and when the scheduler
 * switches processes) */
#define ERTS_ORION_PAIR_BATCH 64
#define ERTS_ORION_PAIR_BATCH_NS 20000000ULL

/* the int Orion writes into wake_fd: install the records' breakpoints now */
#define ERTS_ORION_PAIR_WAKE (-0x4f52)

/* pattern kinds */
#define ERTS_ORION_PAIR_MODULE 1 /* "m:_/_" */
#define ERTS_ORION_PAIR_MF 2     /* "m:f/_" */
#define ERTS_ORION_PAIR_MFA 3    /* "m:f/a" */

/* how a call ended: the probe's second argument */
#define ERTS_ORION_PAIR_RETURN 0    /* returned: wall and on-CPU time are valid */
#define ERTS_ORION_PAIR_EXCEPTION 1 /* unwound by an exception (no time) */
#define ERTS_ORION_PAIR_EXIT 2      /* in flight when its process exited (no time) */

/* key.slot values besides a slot */
#define ERTS_ORION_PAIR_UNWANTED (-1)  /* no pattern of the owner wants it */
#define ERTS_ORION_PAIR_OVER_LIMIT (-2) /* wanted, but max_slots were taken */

/* counter[] indexes: what the emulator could not measure (all zero when healthy) */
#define ERTS_ORION_PAIR_DEPTH_OVERFLOW 0 /* calls beyond ERTS_ORION_PAIR_FRAMES in flight */
#define ERTS_ORION_PAIR_SLOTS_EXHAUSTED 1 /* calls of wanted functions past max_slots */
#define ERTS_ORION_PAIR_KEYS_FULL 2    /* calls not measured: the key table was full */
#define ERTS_ORION_PAIR_NO_MEMORY 3    /* calls not measured: no memory for a frame stack */
#define ERTS_ORION_PAIR_COUNTERS 8

typedef struct {
    uint32_t kind; /* ERTS_ORION_PAIR_MODULE / _MF / _MFA */
    uint32_t arity;
    uint32_t module_len;
    uint32_t function_len;
    char module[ERTS_ORION_PAIR_ATOM_LEN];
    char function[ERTS_ORION_PAIR_ATOM_LEN];
} ErtsOrionPairPattern;

/* patch 0010: one ended call in an orion__calls batch (what orion__call's arguments say) */
typedef struct {
    uint32_t owner_slot; /* (owner << 16) | slot */
    uint32_t how_tails;  /* how it ended, | tail calls << 2 */
    uint64_t wall_ns;
    uint64_t cpu_ns;
} ErtsOrionPairCall;

typedef struct {
    uint64_t module;   /* the atom terms; 0: empty */
    uint64_t function;
    uint32_t arity;
    int32_t slot;      /* a slot, ERTS_ORION_PAIR_UNWANTED or _OVER_LIMIT */
    uint32_t ready;    /* written last (release): the fields above are valid */
    uint32_t pad;
} ErtsOrionPairKey;

typedef struct {
    /* written by Orion */
    uint32_t request;   /* generation asked for; 0: the record is free */
    uint32_t pid;       /* the owning orion process */
    uint32_t max_slots; /* <= ERTS_ORION_PAIR_SLOTS */
    uint32_t npatterns; /* <= ERTS_ORION_PAIR_PATTERNS */
    ErtsOrionPairPattern pattern[ERTS_ORION_PAIR_PATTERNS];
    /* written by the emulator */
    uint32_t active; /* the generation the fields below belong to; 0: being reset */
    uint32_t lock;   /* a spin lock around resets and key inserts */
    uint32_t nslots; /* slots handed out */
    uint32_t installed; /* the generation whose breakpoints are in (0: none) */
    uint32_t breakpoints; /* functions of the loaded code its patterns match */
    uint32_t pad;
    uint64_t counter[ERTS_ORION_PAIR_COUNTERS];
    ErtsOrionPairKey key[ERTS_ORION_PAIR_KEYS];
    char name[ERTS_ORION_PAIR_SLOTS][ERTS_ORION_PAIR_MFA_LEN];
} ErtsOrionPairOwner;

/* How a local pid term holds the pid's number and serial (written by the emulator):
 *   data   = (term >> 4) & ((1 << data_bits) - 1)             (above the 4-bit pid tag)
 *   data   = (data & ~pix_mask) | ((data >> pix_cl_shift) & pix_cl_mask)
 *            | ((data & pix_cli_mask) << pix_cli_shift)       (the process table's
 *                                                             erts_ptab_pixdata2data)
 *   number = data & ((1 << number_bits) - 1), serial = data >> number_bits
 * OTP 24-25: data_bits 28, number_bits 15, the masks 0 (the term holds the data as is).
 * OTP 26+: data_bits 60, number_bits 28, the masks and shifts of the emulator's process table
 * (they depend on its size, +P). */
typedef struct {
    uint32_t data_bits;
    uint32_t number_bits;
    uint64_t pix_mask;
    uint64_t pix_cl_mask;
    uint64_t pix_cli_mask;
    uint32_t pix_cl_shift;
    uint32_t pix_cli_shift;
} ErtsOrionPidLayout;

typedef struct {
    uint32_t magic;   /* ERTS_ORION_PAIR_MAGIC */
    uint32_t version; /* ERTS_ORION_PAIR_VERSION */
    uint32_t size;    /* sizeof(ErtsOrionPair) */
    uint32_t owners;  /* ERTS_ORION_PAIR_OWNERS */
    int32_t wake_fd;  /* the emulator's wake pipe (see above); -1: it cannot pair (a JIT
                     * built without patch 0012) */
    /* Patch 0009, deallocate_return's return sites (see below). */
    uint32_t return_sites; /* emulator: 1 if they fire now */
    uint32_t sync_request; /* Orion: bumped (under its lock file) before a wake */
    uint32_t sync_done;    /* emulator: the sync_request its last sync read */
    /* Patch 0010, batches (see below). */
    uint32_t flush_request; /* Orion: bumped (under its lock file) before a wake */
    uint32_t flush_done;    /* emulator: the flush_request every scheduler has flushed for */
    /* Version 5: the emulator's pid terms (see above). */
    ErtsOrionPidLayout pid_layout;
    ErtsOrionPairOwner owner[ERTS_ORION_PAIR_OWNERS];
} ErtsOrionPair;

#endif /* ERL_ORION_PAIR_H__ */
