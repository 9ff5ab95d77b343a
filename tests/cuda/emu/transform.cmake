# Rewrites one kernels/*.cu for the emulator (emu.hpp): a launch `k<<<cfg>>>(args)` becomes
# `k | ::vts_emu::Launch(__FILE__, __LINE__, cfg)(args)` (the site names the launch in VTS_EMU_STATS), and `extern __shared__ T name[];` a pointer to the block's
# dynamic shared memory. Nothing else changes; #line keeps compiler messages on the original file.
# Usage: cmake -DIN=<file.cu> -DOUT=<file.cpp> -P transform.cmake
file(READ "${IN}" text)
string(REPLACE "<<<" "| ::vts_emu::Launch(__FILE__, __LINE__, " text "${text}")
string(REPLACE ">>>" ")" text "${text}")
string(REGEX REPLACE "extern __shared__ ([A-Za-z0-9_]+) ([A-Za-z0-9_]+)\\[\\];"
       "\\1* const \\2 = static_cast<\\1*>(::vts_emu::dynamic_shared());" text "${text}")
file(WRITE "${OUT}.tmp" "#line 1 \"${IN}\"\n${text}")
file(RENAME "${OUT}.tmp" "${OUT}")
