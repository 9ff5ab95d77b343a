#pragma once
// Kept for code that included it before the backend headers existed: the host-side API of
// vts::cuda now lives in include/vts/backend/cuda/ (cuda.hpp includes all of it).
#include "vts/backend/cuda/runtime.hpp"
