#pragma once
// The vts core headers that kernels share with the CPU backend: the element types and the
// elementwise functors (VTS_HD, so the same math runs in the CPU loops and in these kernels).
#include "vts/core/dtype.hpp"
#include "vts/core/functors.hpp"
