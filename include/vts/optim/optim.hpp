#pragma once
// Optimizers and learning-rate schedules: #include <vts/optim/optim.hpp>.
#include "vts/optim/adam.hpp"
#include "vts/optim/param_list.hpp"
#include "vts/optim/rmsprop.hpp"
#include "vts/optim/schedule.hpp"
#include "vts/optim/sgd.hpp"
