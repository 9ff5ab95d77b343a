#pragma once
// vts::data: datasets, retrieval protocols, image transforms and the batch loader.
// Link the CMake target vts::data (adds stb for image decoding).
#include "vts/data/cifar10.hpp"
#include "vts/data/dataset.hpp"
#include "vts/data/fashion_mnist.hpp"
#include "vts/data/idx.hpp"
#include "vts/data/image.hpp"
#include "vts/data/list_dataset.hpp"
#include "vts/data/loader.hpp"
#include "vts/data/protocol.hpp"
