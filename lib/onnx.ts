// A ResNet encoder as an ONNX graph (opset 17): input 'input' [N, 3, H, W] → 'features' [N, D].
// The protobuf is encoded with protobufjs from the subset of onnx.proto (IR version 8) it needs;
// field numbers are those of github.com/onnx/onnx/blob/main/onnx/onnx.proto.
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import type { StateDict } from './engine';
import type { EncoderArch } from './export';

const ONNX_PROTO = `
syntax = "proto2";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  optional AttributeType type = 20;
}
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
}
message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; INT64 = 7; }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}
message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

const FLOAT = 1;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

type Attr = { name: string; type: number; f?: number; i?: number; ints?: number[] };
type Node = { input: string[]; output: string[]; name: string; opType: string; attribute: Attr[] };

const ints = (name: string, v: number[]): Attr => ({ name, type: ATTR_INTS, ints: v });

/** Builds the graph's nodes and initializers from torchvision-named encoder tensors. */
function buildGraph(sd: StateDict, a: EncoderArch) {
  const nodes: Node[] = [];
  const initializer: { name: string; dims: number[]; dataType: number; rawData: Uint8Array }[] = [];
  const used = new Set<string>();
  const weight = (name: string): string => {
    const t = sd[name];
    if (!t) throw new Error(`ONNX export: tensor ${name} is missing`);
    if (!used.has(name)) {
      used.add(name);
      const d = Float32Array.from(t.data);
      initializer.push({ name, dims: t.shape, dataType: FLOAT, rawData: new Uint8Array(d.buffer) });
    }
    return name;
  };
  let k = 0;
  const node = (opType: string, input: string[], attribute: Attr[] = [], out?: string): string => {
    const o = out ?? `${opType.toLowerCase()}_${k++}`;
    nodes.push({ input, output: [o], name: `${opType}_${k}`, opType, attribute });
    return o;
  };
  const conv = (x: string, name: string, stride: number): string => {
    const w = sd[`${name}.weight`];
    const kh = w.shape[2];
    return node('Conv', [x, weight(`${name}.weight`)], [
      ints('kernel_shape', [kh, w.shape[3]]), ints('strides', [stride, stride]),
      ints('pads', [(kh - 1) / 2, (kh - 1) / 2, (kh - 1) / 2, (kh - 1) / 2]), ints('dilations', [1, 1]),
      { name: 'group', type: ATTR_INT, i: 1 },
    ]);
  };
  const bn = (x: string, name: string): string =>
    node('BatchNormalization', [x, weight(`${name}.weight`), weight(`${name}.bias`), weight(`${name}.running_mean`), weight(`${name}.running_var`)], [
      { name: 'epsilon', type: ATTR_FLOAT, f: 1e-5 },
    ]);
  const relu = (x: string): string => node('Relu', [x]);

  let x = 'input';
  x = relu(bn(conv(x, 'conv1', a.smallStem ? 1 : 2), 'bn1'));
  if (!a.smallStem) x = node('MaxPool', [x], [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])]);
  for (let l = 0; l < 4; l++) {
    for (let b = 0; b < a.blocks[l]; b++) {
      const p = `layer${l + 1}.${b}`;
      const stride = l > 0 && b === 0 ? 2 : 1;
      let y: string;
      if (a.bottleneck) {
        // torchvision v1.5: the stride sits on the 3x3 conv.
        y = relu(bn(conv(x, `${p}.conv1`, 1), `${p}.bn1`));
        y = relu(bn(conv(y, `${p}.conv2`, stride), `${p}.bn2`));
        y = bn(conv(y, `${p}.conv3`, 1), `${p}.bn3`);
      } else {
        y = relu(bn(conv(x, `${p}.conv1`, stride), `${p}.bn1`));
        y = bn(conv(y, `${p}.conv2`, 1), `${p}.bn2`);
      }
      const shortcut = `${p}.downsample.0.weight` in sd ? bn(conv(x, `${p}.downsample.0`, stride), `${p}.downsample.1`) : x;
      x = relu(node('Add', [y, shortcut]));
    }
  }
  x = node('GlobalAveragePool', [x]);
  node('Flatten', [x], [{ name: 'axis', type: ATTR_INT, i: 1 }], 'features');
  return { nodes, initializer };
}

/** The encoder as ONNX ModelProto bytes. */
export function encodeOnnx(sd: StateDict, a: EncoderArch, o: { producer?: string } = {}): Uint8Array {
  const root = protobuf.parse(ONNX_PROTO, { keepCase: false }).root;
  const Model = root.lookupType('onnx.ModelProto');
  const { nodes, initializer } = buildGraph(sd, a);
  const tensorType = (dims: (number | string)[]) => ({
    tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } },
  });
  const msg = {
    irVersion: 8,
    producerName: 'momentum2-teacher',
    producerVersion: '0.1.0',
    docString: o.producer ?? '',
    opsetImport: [{ domain: '', version: 17 }],
    metadataProps: [
      { key: 'arch', value: a.arch },
      { key: 'width', value: String(a.width) },
      { key: 'small_stem', value: String(a.smallStem) },
    ],
    graph: {
      name: `${a.arch}_encoder`,
      node: nodes,
      initializer,
      input: [{ name: 'input', type: tensorType(['N', 3, 'H', 'W']) }],
      output: [{ name: 'features', type: tensorType(['N', a.featureDim]) }],
    },
  };
  const err = Model.verify(msg);
  if (err) throw new Error(`ONNX export: ${err}`);
  return Model.encode(Model.fromObject(msg)).finish();
}

/** Writes the encoder as an .onnx file (atomic). */
export function writeOnnx(file: string, sd: StateDict, a: EncoderArch, o: { producer?: string } = {}): void {
  const bytes = encodeOnnx(sd, a, o);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}
