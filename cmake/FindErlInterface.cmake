# Locates erl_interface (libei) from the installed Erlang/OTP (Debian's erlang-dev),
# by asking erl itself: code:lib_dir(erl_interface).
# Defines the imported target ErlInterface::ei.
find_program(ERL_EXECUTABLE erl)
if(ERL_EXECUTABLE)
  execute_process(
    COMMAND ${ERL_EXECUTABLE} -noshell -eval "io:format(\"~s\", [code:lib_dir(erl_interface)]), halt()."
    OUTPUT_VARIABLE ERL_INTERFACE_DIR RESULT_VARIABLE _ei_rc ERROR_QUIET)
  execute_process(
    COMMAND ${ERL_EXECUTABLE} -noshell -eval "io:format(\"~s\", [code:root_dir()]), halt()."
    OUTPUT_VARIABLE ERL_ROOT_DIR ERROR_QUIET)
endif()
find_path(ERL_INTERFACE_INCLUDE_DIR ei.h HINTS ${ERL_INTERFACE_DIR}/include)
find_library(ERL_INTERFACE_EI_LIBRARY NAMES ei HINTS ${ERL_INTERFACE_DIR}/lib)
find_path(ERL_NIF_INCLUDE_DIR erl_nif.h HINTS ${ERL_ROOT_DIR}/usr/include)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ErlInterface
  REQUIRED_VARS ERL_INTERFACE_EI_LIBRARY ERL_INTERFACE_INCLUDE_DIR)
if(ErlInterface_FOUND AND NOT TARGET ErlInterface::ei)
  add_library(ErlInterface::ei STATIC IMPORTED)
  set_target_properties(ErlInterface::ei PROPERTIES
    IMPORTED_LOCATION ${ERL_INTERFACE_EI_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${ERL_INTERFACE_INCLUDE_DIR}
    # libei is built reentrant: erl_errno is then a per-thread function call, which ei.h only
    # selects when _REENTRANT is defined (else: undefined reference to __erl_errno).
    INTERFACE_COMPILE_DEFINITIONS _REENTRANT
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
