/* A USDT probe site on a 5-byte nop, as Orion's patch 0004 makes the emulator's, in a leaf
 * function built at -O0: its locals live below %rsp, in the x86-64 red zone, unless the file is
 * compiled with -mno-red-zone (as patch 0004 compiles the emulator). red_zone_bpf_test runs it
 * under a uprobe on the site. Prints how many of its ROUNDS results came out wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

#if defined(__x86_64__)
#undef _SDT_NOP
#define _SDT_NOP .nops 5
#endif

long leaf(long x) {
  long a = x, b = x * 3, c = x + 7;
  STAP_PROBE1(orion_test, site, a);
  return a + b + c;
}

int main(int argc, char** argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 1000;
  long wrong = 0;
  for (long i = 0; i < rounds; i++) wrong += leaf(i) != 5 * i + 7;
  printf("%ld of %ld results wrong\n", wrong, rounds);
  return 0;
}
