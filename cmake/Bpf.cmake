# Compiles CO-RE BPF programs with clang and embeds them with `bpftool gen skeleton`.
#
#   orion_bpf_skeleton(<name> <source.bpf.c>)
# produces ${ORION_BPF_GEN_DIR}/<name>.skel.h and an INTERFACE target orion_bpf_<name>
# whose include directories let userspace `#include "<name>.skel.h"`.
find_program(CLANG_EXECUTABLE NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL_EXECUTABLE NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(ORION_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf_gen)
file(MAKE_DIRECTORY ${ORION_BPF_GEN_DIR})

# vmlinux.h from the running kernel's BTF (CO-RE relocations make the objects portable).
# Generated once at configure time: it depends only on the kernel.
set(ORION_VMLINUX_H ${ORION_BPF_GEN_DIR}/vmlinux.h)
if(NOT EXISTS ${ORION_VMLINUX_H})
  if(NOT EXISTS /sys/kernel/btf/vmlinux)
    message(FATAL_ERROR "/sys/kernel/btf/vmlinux is missing: Orion's BPF programs need a kernel with BTF")
  endif()
  execute_process(COMMAND ${BPFTOOL_EXECUTABLE} btf dump file /sys/kernel/btf/vmlinux format c
                  OUTPUT_FILE ${ORION_VMLINUX_H}.tmp RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "bpftool btf dump failed (${_rc})")
  endif()
  file(RENAME ${ORION_VMLINUX_H}.tmp ${ORION_VMLINUX_H})
endif()

execute_process(COMMAND uname -m OUTPUT_VARIABLE _arch OUTPUT_STRIP_TRAILING_WHITESPACE)
if(_arch STREQUAL "x86_64")
  set(ORION_BPF_ARCH x86)
elseif(_arch STREQUAL "aarch64")
  set(ORION_BPF_ARCH arm64)
else()
  set(ORION_BPF_ARCH ${_arch})
endif()
set(ORION_BPF_MULTIARCH_INCLUDE /usr/include/${_arch}-linux-gnu)

function(orion_bpf_skeleton name src)
  set(obj ${ORION_BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${ORION_BPF_GEN_DIR}/${name}.skel.h)
  get_filename_component(src_abs ${src} ABSOLUTE)
  get_filename_component(src_dir ${src_abs} DIRECTORY)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CLANG_EXECUTABLE} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${ORION_BPF_ARCH}
            -Wall -Wno-unused-function
            -I${ORION_BPF_GEN_DIR} -I${src_dir} -I${CMAKE_SOURCE_DIR}
            -idirafter ${ORION_BPF_MULTIARCH_INCLUDE}
            -c ${src_abs} -o ${obj}
    DEPENDS ${src_abs} ${ORION_VMLINUX_H} ${ARGN}
    IMPLICIT_DEPENDS C ${src_abs}
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL_EXECUTABLE} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "Skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(orion_bpf_${name}_gen DEPENDS ${skel})
  add_library(orion_bpf_${name} INTERFACE)
  add_dependencies(orion_bpf_${name} orion_bpf_${name}_gen)
  target_include_directories(orion_bpf_${name} INTERFACE ${ORION_BPF_GEN_DIR} ${CMAKE_SOURCE_DIR})
endfunction()
