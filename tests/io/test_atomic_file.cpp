#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <string>
#include <vector>

#include "io_test_util.hpp"
#include "vts/io/atomic_file.hpp"

using namespace vts::io;
using namespace vts_io_test;
using Catch::Matchers::Contains;

TEST_CASE("io: AtomicFile replaces the destination only on commit", "[io][atomic]") {
  TempDir dir;
  const std::string p = dir / "out.bin";
  write_file_atomic(p, "old", 3);
  CHECK(read_bytes(p) == std::vector<uint8_t>{'o', 'l', 'd'});
  {
    AtomicFile f(p);
    f.write("new contents", 12);
    CHECK(read_bytes(p) == std::vector<uint8_t>{'o', 'l', 'd'});  // not yet visible
    CHECK(dir.entries().size() == 2);                              // destination + temporary
  }  // destroyed without commit: the old file stays, the temporary is gone
  CHECK(read_bytes(p) == std::vector<uint8_t>{'o', 'l', 'd'});
  CHECK(dir.entries() == std::vector<std::string>{"out.bin"});
  {
    AtomicFile f(p);
    f.write("new", 3);
    f.commit();
    CHECK_THROWS_AS(f.commit(), vts::IoError);
  }
  CHECK(read_bytes(p) == std::vector<uint8_t>{'n', 'e', 'w'});
  CHECK(dir.entries() == std::vector<std::string>{"out.bin"});
}

TEST_CASE("io: AtomicFile gives new files ordinary permissions", "[io][atomic]") {
  TempDir dir;
  const std::string p = dir / "perm.bin";
  write_file_atomic(p, "x", 1);
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  const mode_t mask = ::umask(022);
  ::umask(mask);
  CHECK((st.st_mode & 0777) == (0666 & ~mask));
}

TEST_CASE("io: AtomicFile syncs a temporary that someone else rewrote", "[io][atomic]") {
  TempDir dir;
  const std::string p = dir / "ext.bin";
  AtomicFile f(p);
  f.close_handle();
  write_bytes(f.temp_path(), {1, 2, 3});
  f.commit();
  CHECK(read_bytes(p) == std::vector<uint8_t>{1, 2, 3});
}

TEST_CASE("io: AtomicFile errors name the destination", "[io][atomic]") {
  TempDir dir;
  const std::string p = dir / "no_such_dir/x.bin";
  CHECK_THAT(io_error([&] { write_file_atomic(p, "x", 1); }), Contains(p));
}
