# cmake -DBUILD_DIR=... -DTARGET=... -DMESSAGES="first|second|..." -P expect_compile_errors.cmake
# Builds TARGET, which must not compile, and checks that the build's output holds every message
# (plain text, '|'-separated). Fails when the target builds, or when a message is missing (a
# static_assert removed or reworded, or the build failing for another reason).
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(APPEND out "${err}")
if(result EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled; it must fail with: ${MESSAGES}")
endif()
string(REPLACE "|" ";" expected "${MESSAGES}")
set(missing "")
foreach(m IN LISTS expected)
  string(FIND "${out}" "${m}" at)
  if(at EQUAL -1)
    list(APPEND missing "${m}")
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "${TARGET} failed to build, but its output lacks: ${missing}\n--- output ---\n${out}")
endif()
message(STATUS "${TARGET} failed to compile with every expected message")
