# One image for every node of a Ray cluster — KubeRay's head and worker pods, or the `docker:`
# image of a `ray up` cluster — and for the driver: resnet-cli with the ray extra on Ray's own
# image, so driver and workers run the same resnet-cli, Ray and Python (each model actor checks
# that on its first batch and stops the run in one line naming its node if not).
#
#   docker build -t resnet-cli:ray .                        # in this checkout
#   docker build --build-arg RAY_VERSION=2.60.0 -t resnet-cli:ray .
#
# The weights and the ONNX models (fp32 and int8) are fetched and built at build time, at the
# same path in every container, so no node downloads or exports anything at run time.
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-cpu
ARG RAY_VERSION
COPY --chown=ray:users . /home/ray/resnet-cli
RUN pip install --no-cache-dir "/home/ray/resnet-cli[ray]" "ray[default]==${RAY_VERSION}"
RUN resnet-classify -q /home/ray/resnet-cli/sample_images/elephant.jpg \
 && resnet-classify -q --precision int8 /home/ray/resnet-cli/sample_images/elephant.jpg
