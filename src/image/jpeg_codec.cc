#include "image/jpeg_codec.h"

// jpeglib.h needs size_t and FILE declared first.
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <jpeglib.h>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

constexpr int kMaxJpegSide = 65500;  // the format's limit

// libjpeg reports fatal errors through error_exit, which must not return: it longjmps back to
// the setjmp in Compress / Decompress below. Those functions own no C++ objects, so the jump
// skips no destructor. Warnings (corrupt data libjpeg can read past) are counted in
// pub.num_warnings and treated as errors by the decoder.
struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = "";
};

void OnFatalError(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

void OnMessage(j_common_ptr cinfo) {
  // Keep the last warning's text for the error message; never print to stderr.
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
}

void InstallErrors(JpegErrors* errors) {
  jpeg_std_error(&errors->pub);
  errors->pub.error_exit = OnFatalError;
  errors->pub.output_message = OnMessage;
}

// All libjpeg calls of an encode. False after a libjpeg error (text in errors->message).
bool Compress(jpeg_compress_struct* cinfo, JpegErrors* errors, const RgbImage& image, int quality,
              unsigned char** buffer, unsigned long* size) {
  if (setjmp(errors->jump)) return false;
  jpeg_create_compress(cinfo);
  jpeg_mem_dest(cinfo, buffer, size);
  cinfo->image_width = static_cast<JDIMENSION>(image.width);
  cinfo->image_height = static_cast<JDIMENSION>(image.height);
  cinfo->input_components = 3;
  cinfo->in_color_space = JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  const size_t stride = static_cast<size_t>(image.width) * 3;
  while (cinfo->next_scanline < cinfo->image_height) {
    // libjpeg's API takes non-const rows but only reads them.
    JSAMPROW row = const_cast<JSAMPLE*>(image.pixels.data() + cinfo->next_scanline * stride);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

// All libjpeg calls of a decode. False after a libjpeg error (text in errors->message) or when
// the image is too large (errors->message empty).
bool Decompress(jpeg_decompress_struct* cinfo, JpegErrors* errors, const std::string& bytes,
                RgbImage* image) {
  if (setjmp(errors->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(cinfo, TRUE);
  if (static_cast<int64_t>(cinfo->image_width) * cinfo->image_height > kMaxDecodedPixels) {
    return false;
  }
  cinfo->out_color_space = JCS_RGB;
  jpeg_start_decompress(cinfo);
  image->width = static_cast<int>(cinfo->output_width);
  image->height = static_cast<int>(cinfo->output_height);
  const size_t stride = static_cast<size_t>(image->width) * 3;
  image->pixels.resize(stride * image->height);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = image->pixels.data() + cinfo->output_scanline * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

}  // namespace

absl::StatusOr<std::string> EncodeJpeg(const RgbImage& image, int quality) {
  TLCM_RETURN_IF_ERROR(CheckRgbImage(image, "EncodeJpeg"));
  if (image.width > kMaxJpegSide || image.height > kMaxJpegSide) {
    return absl::InvalidArgumentError(absl::StrCat("EncodeJpeg: ", image.width, "x", image.height,
                                                   " exceeds JPEG's limit of ", kMaxJpegSide,
                                                   " pixels per side"));
  }
  if (quality < 1 || quality > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("EncodeJpeg: quality ", quality, " is outside [1, 100]"));
  }
  jpeg_compress_struct cinfo;
  std::memset(&cinfo, 0, sizeof(cinfo));  // destroy is then safe whatever Compress reached
  JpegErrors errors;
  InstallErrors(&errors);
  cinfo.err = &errors.pub;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const bool ok = Compress(&cinfo, &errors, image, quality, &buffer, &size);
  jpeg_destroy_compress(&cinfo);
  std::string out;
  if (ok) out.assign(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);  // jpeg_mem_dest's buffer is malloc'ed and left to the caller
  if (!ok) return absl::InternalError(absl::StrCat("EncodeJpeg: libjpeg: ", errors.message));
  return out;
}

absl::StatusOr<RgbImage> DecodeJpeg(const std::string& bytes, const std::string& what) {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty JPEG data"));
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof(cinfo));
  JpegErrors errors;
  InstallErrors(&errors);
  cinfo.err = &errors.pub;
  RgbImage image;
  const bool ok = Decompress(&cinfo, &errors, bytes, &image);
  const long warnings = errors.pub.num_warnings;
  const JDIMENSION width = cinfo.image_width, height = cinfo.image_height;
  jpeg_destroy_decompress(&cinfo);
  if (!ok && errors.message[0] == '\0') {
    return DecodedSizeError(what, "JPEG", width, height);
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a valid JPEG: ", errors.message));
  }
  if (warnings > 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": corrupt JPEG: ", errors.message));
  }
  return image;
}

}  // namespace tlcm
