#ifndef PLEXUS_CFUZZERDRIVER_H
#define PLEXUS_CFUZZERDRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry point for programs with their own `main` (compiler-rt
/// FuzzerDriver.cpp). SwiftPM gives every executable target a `main` of its own, so the
/// fuzz targets call this from theirs instead of letting libFuzzer supply `main`.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
