/* orion_tracer_nif: the erl_tracer NIF of Orion's tracer mode (docs/tracer.md).
 *
 * ERTS calls enabled/3 and trace/5 in the traced process itself, synchronously, when a traced
 * event happens. For call, return_from and exception_from events, trace/5 fires one of this
 * library's USDT probes and returns: no message is sent, nothing is allocated, and the time of
 * the event is read by the BPF program attached to the probe (bpf/tracer.bpf.c).
 *
 * Probes (provider "orion"), all with integer arguments only:
 *   orion:call(u64 pid, u32 target)            a call of target whose match spec matched
 *   orion:return_from(u64 pid, u32 target)     that call returned
 *   orion:exception_from(u64 pid, u32 target)  that call raised
 * `pid` is the Erlang pid's term word (an immediate, unique among live processes of the node);
 * `target` is the id the tracer state maps the event's {M, F, Arity} to. The state is a map
 * #{{M, F, Arity} => Id}; an event of an MFA that is not in it fires nothing.
 */
#include <erl_nif.h>
#include <stdint.h>
#include <sys/sdt.h>

#if defined(__x86_64__)
/* Probe sites on a 5-byte nop rather than sys/sdt.h's 1-byte nop: Linux's x86 uprobe
 * optimization makes a uprobe on a 5-byte nop a call instead of an int3 trap, about a quarter
 * cheaper per hit (the same change as the BEAM's patch 0004; docs/performance.md). */
#undef _SDT_NOP
#define _SDT_NOP .nops 5
#endif

static ERL_NIF_TERM atom_trace;
static ERL_NIF_TERM atom_discard;
static ERL_NIF_TERM atom_ok;
static ERL_NIF_TERM atom_call;
static ERL_NIF_TERM atom_return_from;
static ERL_NIF_TERM atom_exception_from;
static ERL_NIF_TERM atom_trace_status;

static int load(ErlNifEnv* env, void** priv, ERL_NIF_TERM info) {
  (void)priv;
  (void)info;
  atom_trace = enif_make_atom(env, "trace");
  atom_discard = enif_make_atom(env, "discard");
  atom_ok = enif_make_atom(env, "ok");
  atom_call = enif_make_atom(env, "call");
  atom_return_from = enif_make_atom(env, "return_from");
  atom_exception_from = enif_make_atom(env, "exception_from");
  atom_trace_status = enif_make_atom(env, "trace_status");
  return 0;
}

static int upgrade(ErlNifEnv* env, void** priv, void** old_priv, ERL_NIF_TERM info) {
  (void)old_priv;
  return load(env, priv, info);
}

/* enabled(TraceTag, TracerState, Tracee): trace the three events we fire probes for, keep the
 * tracer (trace_status), discard everything else before ERTS builds its trace term. */
static ERL_NIF_TERM enabled(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  (void)env;
  (void)argc;
  const ERL_NIF_TERM tag = argv[0];
  if (enif_is_identical(tag, atom_call) || enif_is_identical(tag, atom_return_from) ||
      enif_is_identical(tag, atom_exception_from) || enif_is_identical(tag, atom_trace_status)) {
    return atom_trace;
  }
  return atom_discard;
}

/* trace(TraceTag, TracerState, Tracee, TraceTerm, Opts): TraceTerm is {M, F, Arity} (the
 * capture sets the `arity` trace flag, so call events carry the arity too). */
static ERL_NIF_TERM trace(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  (void)argc;
  const ERL_NIF_TERM tag = argv[0];
  ERL_NIF_TERM id_term;
  unsigned int id;
  if (!enif_is_pid(env, argv[2])) return atom_ok;
  if (!enif_get_map_value(env, argv[1], argv[3], &id_term)) return atom_ok;
  if (!enif_get_uint(env, id_term, &id)) return atom_ok;
  const uint64_t pid = (uint64_t)argv[2];
  if (enif_is_identical(tag, atom_call)) {
    DTRACE_PROBE2(orion, call, pid, id);
  } else if (enif_is_identical(tag, atom_return_from)) {
    DTRACE_PROBE2(orion, return_from, pid, id);
  } else if (enif_is_identical(tag, atom_exception_from)) {
    DTRACE_PROBE2(orion, exception_from, pid, id);
  }
  return atom_ok;
}

static ErlNifFunc nif_funcs[] = {
    {"enabled", 3, enabled, 0},
    {"trace", 5, trace, 0},
};

ERL_NIF_INIT(orion_tracer, nif_funcs, load, NULL, upgrade, NULL)
