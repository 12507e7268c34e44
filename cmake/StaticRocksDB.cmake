# shoal_link_store_static(TARGET): links TARGET (shoald) against Debian's static archives of
# RocksDB (with its compression libraries), libsodium and jemalloc instead of their shared
# libraries. An idle node maps only the parts of them it uses: librocksdb.so alone was 8.8 MB of
# an idle node's 27.6 MB RSS (docs/ARCHITECTURE.md, "Linking").
#
# RocksDB's CRC32C: the executable defines rocksdb::crc32c::Extend with ISA-L's
# (store/internal/fast_crc32c.cc). Against the shared library the dynamic linker binds
# librocksdb's calls to it; against the archive, RocksDB's own definition would clash with it, so
# the build makes a copy of the archive in which that one symbol is weak and ours wins at link
# time. Falls back to the shared libraries if an archive or objcopy is missing.
function(shoal_link_store_static target)
  set(extension_symbol _ZN7rocksdb6crc32c6ExtendEjPKcm)
  set(names rocksdb snappy lz4 zstd bz2 gflags sodium jemalloc_pic)
  set(archives "")
  foreach(n IN LISTS names)
    find_library(SHOAL_STATIC_${n} NAMES lib${n}.a)
    if(NOT SHOAL_STATIC_${n} OR NOT CMAKE_OBJCOPY)
      message(STATUS "shoal: lib${n}.a or objcopy not found; ${target} links RocksDB dynamically")
      target_link_libraries(${target} PRIVATE PkgConfig::jemalloc)
      return()
    endif()
    list(APPEND archives ${SHOAL_STATIC_${n}})
  endforeach()
  list(POP_FRONT archives rocksdb_archive)
  set(weak_rocksdb ${CMAKE_BINARY_DIR}/librocksdb-shoal.a)
  if(NOT TARGET shoal_rocksdb_archive)
    add_custom_command(
      OUTPUT ${weak_rocksdb}
      COMMAND ${CMAKE_OBJCOPY} --weaken-symbol=${extension_symbol} ${rocksdb_archive}
              ${weak_rocksdb}
      DEPENDS ${rocksdb_archive}
      COMMENT "librocksdb.a with a weak rocksdb::crc32c::Extend")
    add_custom_target(shoal_rocksdb_archive DEPENDS ${weak_rocksdb})
  endif()
  add_dependencies(${target} shoal_rocksdb_archive)
  # Listed after the node's own libraries, before the shared copies their targets name
  # (--as-needed then drops those). base/memory.cc finds mallctl with dlsym.
  target_link_libraries(${target} PRIVATE ${weak_rocksdb} ${archives} z Threads::Threads
                                          ${CMAKE_DL_LIBS} m)
  target_link_options(${target} PRIVATE "LINKER:--export-dynamic-symbol=mallctl")
endfunction()
