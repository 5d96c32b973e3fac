/**
 * The OCI image of a baked snapshot: build the layout (build.ts), push it (push.ts), pull and unpack
 * (pull.ts, unpack.ts). A small distribution-API client of our own (registry.ts) does the HTTP.
 */
export { writeImageLayout, DEFAULT_COMPRESS, type WriteImageOptions, type WriteImageResult } from "./build";
export { pushImage, type PushOptions, type PushResult } from "./push";
export { pullImage, fetchImage, type PullOptions, type FetchedImage } from "./pull";
export { unpackLayer } from "./unpack";
export { readLayout, blobPath, type LayoutImage } from "./layout";
export { parseImageRef, formatImageRef, ImageRefError, type ImageRef } from "./reference";
export { RegistryError } from "./registry";
export { resolveAuth, parseEcrHost, decodeEcrToken, ENV_USER, ENV_PASSWORD, type RegistryAuth, type EcrTokenSource } from "./auth";
export type { Progress } from "./progress";
