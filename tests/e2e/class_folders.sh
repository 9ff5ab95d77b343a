# Sourced by the end-to-end scripts: Fashion-MNIST test images written as PGM files into class
# folders named after the classes, the way a user's photos would lie.
fashion_class_names=(tshirt trouser pullover dress coat sandal shirt sneaker bag boot)

# write_class_folders DATA_DIR OUT_DIR PER_CLASS SCRATCH_DIR: the first PER_CLASS test images of each
# class into OUT_DIR/<class>/img<index>.pgm (index in the test set); fails unless every class got them.
write_class_folders() {
  local data=$1 dest=$2 per_class=$3 scratch=$4
  gzip -dc "$data/t10k-images-idx3-ubyte.gz" | tail -c +17 >"$scratch/images.raw"
  # (Through a file: `head` closing a pipe early would kill the writer with SIGPIPE, which pipefail
  # turns into a failure of the whole script whenever the writer had not finished first.)
  gzip -dc "$data/t10k-labels-idx1-ubyte.gz" >"$scratch/labels.raw"
  local labels i class
  labels=($(od -An -v -tu1 -j 8 -N $((per_class * 40)) "$scratch/labels.raw"))
  local -A count
  for i in "${!labels[@]}"; do
    class=${fashion_class_names[${labels[$i]}]}
    [[ ${count[$class]:-0} -lt $per_class ]] || continue
    count[$class]=$((${count[$class]:-0} + 1))
    mkdir -p "$dest/$class"
    { printf 'P5\n28 28\n255\n'; dd if="$scratch/images.raw" bs=784 skip="$i" count=1 status=none; } \
      >"$dest/$class/img$(printf %04d "$i").pgm"
  done
  for class in "${fashion_class_names[@]}"; do
    [[ ${count[$class]:-0} == "$per_class" ]] || { echo "FAIL: only ${count[$class]:-0} images of $class"; return 1; }
  done
}
