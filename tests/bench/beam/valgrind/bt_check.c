// build_valgrind.sh's check of 0001-amd64-bt-register-without-stack.patch: BT, BTS, BTR and
// BTC on registers (64-, 32- and 16-bit, bit numbers past the operand's width) fold their
// results and carry flags into one hash, which must be the same natively and under valgrind.
#include <stdio.h>
#include <stdint.h>
int main(void) {
  uint64_t vals[] = {0, 1, 0x8000000000000000ull, 0xdeadbeefcafebabeull, 0xffffffffffffffffull, 0x00000000ffff0000ull};
  unsigned long h = 1469598103934665603ull;
  for (int i = 0; i < 6; i++) for (uint64_t b = 0; b < 130; b += 3) {
    uint64_t r, v; unsigned char c; uint32_t r32; uint16_t r16;
#define MIX(x) h = (h ^ (uint64_t)(x)) * 1099511628211ull
    v = vals[i]; __asm__("btq %2,%1; setc %0" : "=r"(c) : "r"(v), "r"(b) : "cc"); MIX(c);
    r = vals[i]; __asm__("btsq %2,%0; setc %1" : "+r"(r), "=r"(c) : "r"(b) : "cc"); MIX(r); MIX(c);
    r = vals[i]; __asm__("btrq %2,%0; setc %1" : "+r"(r), "=r"(c) : "r"(b) : "cc"); MIX(r); MIX(c);
    r = vals[i]; __asm__("btcq %2,%0; setc %1" : "+r"(r), "=r"(c) : "r"(b) : "cc"); MIX(r); MIX(c);
    r32 = (uint32_t)vals[i]; __asm__("btl %k2,%k0; setc %1" : "+r"(r32), "=r"(c) : "r"(b) : "cc"); MIX(r32); MIX(c);
    r32 = (uint32_t)vals[i]; __asm__("btsl %k2,%k0; setc %1" : "+r"(r32), "=r"(c) : "r"(b) : "cc"); MIX(r32); MIX(c);
    r = vals[i]; __asm__("btcl %k2,%k0; setc %1" : "+r"(r), "=r"(c) : "r"(b) : "cc"); MIX(r); MIX(c);
    r = vals[i]; __asm__("btl %k2,%k0; setc %1" : "+r"(r), "=r"(c) : "r"(b) : "cc"); MIX(r); MIX(c);
    r16 = (uint16_t)vals[i]; __asm__("btrw %w2,%w0; setc %1" : "+r"(r16), "=r"(c) : "r"(b) : "cc"); MIX(r16); MIX(c);
    r = vals[i]; __asm__("btw %w2,%w0; setc %1" : "+r"(r), "=r"(c) : "r"(b) : "cc"); MIX(r); MIX(c);
  }
  printf("%016lx\n", h);
  return 0;
}
