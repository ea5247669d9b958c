/* SPDX-License-Identifier: GPL-2.0 */
/* A USDT probe's arguments, fetched cheaper than with libbpf's bpf_usdt_arg(): the probe site's
 * spec is looked up once for all the arguments (bpf_usdt_arg looks it up for each), and an
 * argument held in a register is read from pt_regs at a constant offset (bpf_usdt_arg copies it
 * with bpf_probe_read_kernel, since it only knows the offset at run time). The spec, its map and
 * its layout are libbpf's (usdt.bpf.h, filled by bpf_program__attach_usdt), so the results are
 * bpf_usdt_arg's. perf showed bpf_usdt_arg and its register copies at about a tenth of a
 * targeted call's samples (docs/performance.md).
 *
 *   long args[3];
 *   if (orion_usdt_args(ctx, args, 3) != 0) return 0;
 *
 * x86-64 only (the register switch), like the rest of Orion's BPF. */
#pragma once

#include <bpf/usdt.bpf.h>

static __always_inline unsigned long orion_usdt_reg(struct pt_regs *ctx, short off) {
  switch (off) {
    case __builtin_offsetof(struct pt_regs, r15): return ctx->r15;
    case __builtin_offsetof(struct pt_regs, r14): return ctx->r14;
    case __builtin_offsetof(struct pt_regs, r13): return ctx->r13;
    case __builtin_offsetof(struct pt_regs, r12): return ctx->r12;
    case __builtin_offsetof(struct pt_regs, bp): return ctx->bp;
    case __builtin_offsetof(struct pt_regs, bx): return ctx->bx;
    case __builtin_offsetof(struct pt_regs, r11): return ctx->r11;
    case __builtin_offsetof(struct pt_regs, r10): return ctx->r10;
    case __builtin_offsetof(struct pt_regs, r9): return ctx->r9;
    case __builtin_offsetof(struct pt_regs, r8): return ctx->r8;
    case __builtin_offsetof(struct pt_regs, ax): return ctx->ax;
    case __builtin_offsetof(struct pt_regs, cx): return ctx->cx;
    case __builtin_offsetof(struct pt_regs, dx): return ctx->dx;
    case __builtin_offsetof(struct pt_regs, si): return ctx->si;
    case __builtin_offsetof(struct pt_regs, di): return ctx->di;
    case __builtin_offsetof(struct pt_regs, sp): return ctx->sp;
    default: {
      unsigned long v = 0;
      bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx + off);
      return v;
    }
  }
}

/* The first n (a constant, at most BPF_USDT_MAX_ARG_CNT) arguments into out[]; non-zero if
 * the probe site has no spec or fewer arguments. */
static __always_inline int orion_usdt_args(struct pt_regs *ctx, long *out, int n) {
  int spec_id = __bpf_usdt_spec_id(ctx);
  if (spec_id < 0) return -1;
  struct __bpf_usdt_spec *spec = bpf_map_lookup_elem(&__bpf_usdt_specs, &spec_id);
  if (!spec || spec->arg_cnt < n) return -1;
#pragma unroll
  for (int i = 0; i < n && i < BPF_USDT_MAX_ARG_CNT; i++) {
    struct __bpf_usdt_arg_spec *a = &spec->args[i];
    unsigned long val;
    switch (a->arg_type) {
      case BPF_USDT_ARG_CONST:
        val = a->val_off;
        break;
      case BPF_USDT_ARG_REG:
        val = orion_usdt_reg(ctx, a->reg_off);
        break;
      case BPF_USDT_ARG_REG_DEREF:
        val = orion_usdt_reg(ctx, a->reg_off);
        if (bpf_probe_read_user(&val, sizeof(val), (void *)val + a->val_off)) return -1;
        break;
      default:
        return -1;
    }
    val <<= a->arg_bitshift;
    if (a->arg_signed) {
      val = ((long)val) >> a->arg_bitshift;
    } else {
      val = val >> a->arg_bitshift;
    }
    out[i] = (long)val;
  }
  return 0;
}

/* `SEC("usdt") int ORION_USDT2(name, t0, a0, t1, a1) { body }`: BPF_USDT(name, t0 a0, t1 a1)
 * with orion_usdt_args; the body sees its two arguments as declared. A probe site without them
 * counts as not fired (the body does not run). Like BPF_USDT, it starts with the declaration of
 * `name` itself, so that SEC() and the return type apply to it. */
#define ORION_USDT2(name, t0, a0, t1, a1)                                  \
  name(struct pt_regs *ctx);                                               \
  static __always_inline int ____##name(struct pt_regs *ctx, t0 a0, t1 a1); \
  int name(struct pt_regs *ctx) {                                          \
    long __args[2];                                                        \
    if (orion_usdt_args(ctx, __args, 2) != 0) return 0;                    \
    return ____##name(ctx, (t0)__args[0], (t1)__args[1]);                  \
  }                                                                        \
  static __always_inline int ____##name(struct pt_regs *ctx, t0 a0, t1 a1)
