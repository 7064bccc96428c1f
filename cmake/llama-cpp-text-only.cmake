# Read by llama.cpp's CMake right after its project() (CMAKE_PROJECT_llama.cpp_INCLUDE, in the
# Makefile's CMAKE_ARGS) when pip builds llama-cpp-python from source. llama-cpp-python forces
# LLAMA_BUILD_COMMON on in its cache, so a -D flag cannot turn it off; a variable set here wins.
# Its Python package never loads libllama-common: skipping it (and mtmd, -DLLAVA_BUILD=OFF)
# takes the compile from about 660 to 270 CPU-seconds on 2 cores, with the same completions.
set(LLAMA_BUILD_COMMON OFF)
