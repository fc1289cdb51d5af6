/* tfev: the Event protobuf inside TensorBoard event files: its fields, named once for the
 * writer (tfev_write.h, tfev_hist.h, tfev_image.h) and the reader (tfev_read.h).
 *
 * A run folder holds events.out.tfevents.<unix-seconds>.<hostname>[.<n>], a sequence of
 * TFRecords (tfrecord.h), each payload one serialized Event protobuf. The first Event
 * carries file_version "brain.Event:2". Field numbers, from TensorBoard's copies of
 * TensorFlow's protos (tensorboard/compat/proto/):
 *   event.proto      Event: wall_time 1 (double s), step 2 (int64), file_version 3 (string),
 *                    graph_def 4 (bytes: a GraphDef), summary 5 (Summary)
 *   summary.proto    Summary: value 1 (repeated Value)
 *                    Value: tag 1, simple_value 2 (float), image 4, histo 5, tensor 8,
 *                           metadata 9 (SummaryMetadata: plugin_data 1 {plugin_name 1, content 2})
 *                    Image: height 1, width 2, colorspace 3 (1 gray, 3 RGB, 4 RGBA),
 *                           encoded_image_string 4 (PNG bytes)
 *   histogram.proto  HistogramProto: min 1, max 2, num 3, sum 4, sum_squares 5 (doubles),
 *                    bucket_limit 6, bucket 7 (packed doubles; bucket i counts values in
 *                    [bucket_limit[i-1], bucket_limit[i]))
 *   tensor.proto     TensorProto: dtype 1 (types.proto: DT_FLOAT 1, DT_STRING 7),
 *                    tensor_shape 2, float_val 5, string_val 8, tensor_content 4
 *   graph.proto      GraphDef: node 1 (repeated NodeDef), versions 4 (VersionDef: producer 1)
 *   node_def.proto   NodeDef: name 1, op 2, input 3 (repeated), attr 5 (map: key 1, value 2)
 *   attr_value.proto AttrValue: list 1 (ListValue: shape 7), type 6, shape 7
 *   tensor_shape.proto TensorShapeProto: dim 2 (Dim: size 1, -1 unknown)
 */
#ifndef PETCNN_TFEV_H
#define PETCNN_TFEV_H

#define TFEV_FILE_VERSION "brain.Event:2"

/* Field numbers: see the table above. */
enum {
	TFEV_EV_WALL_TIME = 1, TFEV_EV_STEP = 2, TFEV_EV_FILE_VERSION = 3,
	TFEV_EV_GRAPH_DEF = 4, TFEV_EV_SUMMARY = 5,
	TFEV_SUM_VALUE = 1,
	TFEV_VAL_TAG = 1, TFEV_VAL_SIMPLE = 2, TFEV_VAL_IMAGE = 4, TFEV_VAL_HISTO = 5,
	TFEV_VAL_TENSOR = 8, TFEV_VAL_META = 9,
	TFEV_META_PLUGIN = 1, TFEV_PLUGIN_NAME = 1,
	TFEV_IMG_HEIGHT = 1, TFEV_IMG_WIDTH = 2, TFEV_IMG_COLORSPACE = 3, TFEV_IMG_DATA = 4,
	TFEV_HIS_MIN = 1, TFEV_HIS_MAX = 2, TFEV_HIS_NUM = 3, TFEV_HIS_SUM = 4,
	TFEV_HIS_SUMSQ = 5, TFEV_HIS_LIMIT = 6, TFEV_HIS_COUNT = 7,
	TFEV_TEN_DTYPE = 1, TFEV_TEN_SHAPE = 2, TFEV_TEN_CONTENT = 4, TFEV_TEN_FLOAT = 5,
	TFEV_TEN_STRING = 8,
	TFEV_DT_FLOAT = 1, TFEV_DT_STRING = 7,
	TFEV_GR_NODE = 1, TFEV_GR_VERSIONS = 4, TFEV_VER_PRODUCER = 1,
	TFEV_NODE_NAME = 1, TFEV_NODE_OP = 2, TFEV_NODE_INPUT = 3, TFEV_NODE_ATTR = 5,
	TFEV_MAP_KEY = 1, TFEV_MAP_VALUE = 2,
	TFEV_ATTR_LIST = 1, TFEV_ATTR_TYPE = 6, TFEV_LIST_SHAPE = 7,
	TFEV_SHAPE_DIM = 2, TFEV_DIM_SIZE = 1,
};

#endif
