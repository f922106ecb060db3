// JPEG through libjpeg-turbo, to the pixels Pillow 9.4's JpegImagePlugin + convert("RGB")
// produce. Pillow links the same library and leaves its defaults alone (islow IDCT, fancy
// upsampling), asking for JCS_GRAYSCALE, JCS_RGB or JCS_CMYK by the number of components, so
// grey and colour files come out byte for byte as Pillow's.
//
// libjpeg reports errors through error_exit, which must not return: ours longjmps. As in
// png_decode.cpp, the functions that call setjmp (read_header, read_pixels) hold no object with
// a destructor, and the state the callbacks touch (JpegErrors) is plain data owned by
// decode_jpeg's frame, which the jump never leaves.
#include <cstdio>  // jpeglib.h needs FILE declared first

#include <jerror.h>
#include <jpeglib.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "vision/image_codecs.h"

namespace llama3::vision::detail {

namespace {

// libjpeg-turbo's own limit for its fuzzers and TurboJPEG (TJPARAM_SCANLIMIT): a progressive
// file with thousands of tiny scans costs minutes to decode; real encoders write about ten.
constexpr int kMaxScans = 500;

struct JpegErrors {
  jpeg_error_mgr mgr;  // first: libjpeg hands us back a pointer to it
  jmp_buf jump;
  int code = 0;  // libjpeg's message code of the error (or of the warning turned into one)
  char message[JMSG_LENGTH_MAX] = {};
};

[[noreturn]] void jump_out(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  e->code = cinfo->err->msg_code;
  cinfo->err->format_message(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

void on_error_exit(j_common_ptr cinfo) { jump_out(cinfo); }

// libjpeg's default prints to stderr; a library must not.
void on_output_message(j_common_ptr) {}

// level -1 is a warning about corrupt data. libjpeg goes on (so does Pillow, e.g. for extraneous
// bytes before a marker), except at the end of the data: libjpeg would pad the rest of the image
// with grey, where Pillow refuses a truncated file ("image file is truncated").
void on_emit_message(j_common_ptr cinfo, int level) {
  if (level == -1) {
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) jump_out(cinfo);
    cinfo->err->num_warnings++;
  }
}

void on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
    e->code = -1;
    std::snprintf(e->message, sizeof e->message, "more than %d progressive scans", kMaxScans);
    std::longjmp(e->jump, 1);
  }
}

// Phase 1: the markers up to the first scan.
int read_header(jpeg_decompress_struct* cinfo, JpegErrors* errors, const unsigned char* data, unsigned long size) {
  if (setjmp(errors->jump)) return 0;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, size);
  jpeg_read_header(cinfo, TRUE);
  return 1;
}

// Phase 2: every scanline into `out`, `stride` bytes apart.
int read_pixels(jpeg_decompress_struct* cinfo, JpegErrors* errors, J_COLOR_SPACE space, int components,
                unsigned char* out, size_t stride) {
  if (setjmp(errors->jump)) return 0;
  cinfo->out_color_space = space;
  jpeg_start_decompress(cinfo);
  if (cinfo->output_components != components || cinfo->output_width != cinfo->image_width ||
      cinfo->output_height != cinfo->image_height) {
    ERREXIT(cinfo, JERR_CONVERSION_NOTIMPL);
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + static_cast<size_t>(cinfo->output_scanline) * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  return 1;
}

// Owns the decompressor; declared in decode_jpeg, outside the jumps' reach.
struct JpegHandle {
  jpeg_decompress_struct cinfo;
  jpeg_progress_mgr progress;
  JpegErrors errors;
  JpegHandle() {
    std::memset(&cinfo, 0, sizeof cinfo);  // jpeg_destroy_decompress is safe on a failed create
    std::memset(&progress, 0, sizeof progress);
    cinfo.err = jpeg_std_error(&errors.mgr);
    errors.mgr.error_exit = on_error_exit;
    errors.mgr.output_message = on_output_message;
    errors.mgr.emit_message = on_emit_message;
    progress.progress_monitor = on_progress;
  }
  ~JpegHandle() { jpeg_destroy_decompress(&cinfo); }
  JpegHandle(const JpegHandle&) = delete;
  JpegHandle& operator=(const JpegHandle&) = delete;
};

[[noreturn]] void fail_jpeg(const JpegErrors& e, std::string_view name) {
  if (e.code == JWRN_JPEG_EOF || e.code == JERR_INPUT_EOF) {
    fail("image '{}': truncated JPEG file (it ends before the image data does)", name);
  }
  if (e.code == JERR_EMPTY_IMAGE) fail("image '{}' has zero size (its JPEG header says so)", name);
  fail("image '{}': corrupt JPEG file ({})", name, e.message);
}

// Pillow's "CMYK;I" unpacker (Adobe's inverted CMYK, assumed for every 4-channel JPEG) followed
// by its cmyk2rgb: r = 255-k - (255-k)*c/255 with Pillow's rounded division by 255.
void cmyk_to_rgb(const uint8_t* in, uint8_t* out, size_t pixels) {
  for (size_t i = 0; i < pixels; ++i) {
    const int nk = in[4 * i + 3];  // 255 - (255 - stored k)
    for (int c = 0; c < 3; ++c) {
      const int t = (255 - in[4 * i + c]) * nk + 128;
      out[3 * i + c] = static_cast<uint8_t>(std::max(0, nk - (((t >> 8) + t) >> 8)));
    }
  }
}

}  // namespace

RgbImage decode_jpeg(std::span<const std::byte> file, std::string_view name, const ImageLimits& limits) {
  JpegHandle h;
  if (!read_header(&h.cinfo, &h.errors, reinterpret_cast<const unsigned char*>(file.data()),
                   static_cast<unsigned long>(file.size()))) {
    fail_jpeg(h.errors, name);
  }
  const int components = h.cinfo.num_components;
  check(components == 1 || components == 3 || components == 4,
        "image '{}': JPEG with {} colour components (only 1, 3 or 4 are supported)", name, components);
  check_image_size(h.cinfo.image_width, h.cinfo.image_height, name, limits);
  h.cinfo.progress = &h.progress;

  const size_t width = h.cinfo.image_width, height = h.cinfo.image_height;
  RgbImage image;
  image.width = static_cast<int64_t>(width);
  image.height = static_cast<int64_t>(height);
  image.pixels.resize(width * height * 3);
  if (components == 3) {
    if (!read_pixels(&h.cinfo, &h.errors, JCS_RGB, 3, image.pixels.data(), width * 3)) fail_jpeg(h.errors, name);
    return image;
  }
  std::vector<uint8_t> samples(width * height * static_cast<size_t>(components));
  const J_COLOR_SPACE space = components == 1 ? JCS_GRAYSCALE : JCS_CMYK;
  if (!read_pixels(&h.cinfo, &h.errors, space, components, samples.data(), width * components)) {
    fail_jpeg(h.errors, name);
  }
  if (components == 1) {
    for (size_t i = 0; i < width * height; ++i) image.pixels[3 * i] = image.pixels[3 * i + 1] = image.pixels[3 * i + 2] = samples[i];
  } else {
    cmyk_to_rgb(samples.data(), image.pixels.data(), width * height);
  }
  return image;
}

}  // namespace llama3::vision::detail
