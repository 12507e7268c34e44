# shoal_link_grpc_static(TARGET [EXTRA...]): links TARGET against the static archives of gRPC
# (and of the EXTRA gRPC libraries, e.g. grpc++_reflection), protobuf and
# Abseil that Debian ships, instead of their ~55 shared libraries. The `shoal` CLI starts in
# about a third of the time that way (dynamic loading dominated the latency of a short command
# such as `shoal node info`). Falls back to the shared libraries if an archive is missing.
function(shoal_link_grpc_static target)
  set(names ${ARGN} grpc++ grpc gpr upb address_sorting cares re2 protobuf)
  set(archives "")
  foreach(n IN LISTS names)
    find_library(SHOAL_STATIC_${n} NAMES lib${n}.a)
    if(NOT SHOAL_STATIC_${n})
      message(STATUS "shoal: lib${n}.a not found; ${target} links gRPC dynamically")
      target_link_libraries(${target} PRIVATE gRPC::grpc++ protobuf::libprotobuf)
      return()
    endif()
    list(APPEND archives ${SHOAL_STATIC_${n}})
  endforeach()
  file(GLOB absl_archives /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/libabsl_*.a)
  # OpenSSL static too when its archives are there.
  find_library(SHOAL_STATIC_ssl NAMES libssl.a)
  find_library(SHOAL_STATIC_crypto NAMES libcrypto.a)
  if(SHOAL_STATIC_ssl AND SHOAL_STATIC_crypto)
    set(ssl ${SHOAL_STATIC_ssl} ${SHOAL_STATIC_crypto} ${CMAKE_DL_LIBS})
  else()
    set(ssl OpenSSL::SSL OpenSSL::Crypto)
  endif()
  target_link_libraries(${target} PRIVATE
    -Wl,--start-group ${archives} ${absl_archives} -Wl,--end-group
    ${ssl} z Threads::Threads)
endfunction()
