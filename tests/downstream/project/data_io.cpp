// The targets that add dependencies, vts::data (stb) and vts::io (libzip, nlohmann-json), as a
// downstream project gets them: an image decoded through stb, an array through the .npy writer and
// reader.
#include <vts/data/image.hpp>
#include <vts/io/npy.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

int main() {
  const std::string path = (std::filesystem::temp_directory_path() / "vts_downstream_2x1.pgm").string();
  {
    std::ofstream f(path, std::ios::binary);
    f << "P5\n2 1\n255\n" << char(7) << char(200);
  }
  const vts::data::ImageU8 img = vts::data::decode_image(path, 1);
  std::filesystem::remove(path);
  const auto bytes = vts::io::serialize_npy(vts::io::make_array(std::vector<float>{1.5f, -2.0f}, {2}));
  const std::vector<float> back = vts::io::parse_npy(bytes.data(), bytes.size(), "downstream").as<float>();
  const bool ok = img.width == 2 && img.height == 1 && img.pixels[0] == 7 && img.pixels[1] == 200 &&
                  back == std::vector<float>{1.5f, -2.0f};
  std::printf("vts::data and vts::io: %s\n", ok ? "ok" : "wrong");
  return ok ? 0 : 1;
}
