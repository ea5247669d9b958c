// The page's kernel mapping, from sketch/bucket_index.h itself (bundled as text by build.mjs):
// the one definition of the buckets (docs/sketch.md).
import header from '../../../../sketch/bucket_index.h';
import { KernelMapping, parseBucketHeader } from './sketch.js';

export const mapping = new KernelMapping(parseBucketHeader(header));
