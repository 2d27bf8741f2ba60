/**
 * driftloop's loop as a CDK stack, built from infra/loop.json — the wiring extracted from
 * infra/template.yaml (`python infra/tools/spec.py --write`). The functions are cargo-lambda-cdk
 * RustFunctions (one workspace, one cargo target, four binaries); every other resource, the
 * parameters and the conditions come from the spec with the SAM template's logical IDs, so
 * tests/python/test_infra_cdk.py can compare the synthesized template with the SAM-transformed one
 * resource by resource (rules, patterns, targets, alarm, dashboard, queues, IAM).
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  CfnCondition, CfnDeletionPolicy, CfnOutput, CfnParameter, CfnResource, Duration, Stack, StackProps, Token, Validations,
} from 'aws-cdk-lib';
import { CfnRole } from 'aws-cdk-lib/aws-iam';
import { Architecture, CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';

type Json = any; // CloudFormation JSON with intrinsics, passed through as-is

export interface LoopSpec {
  description: string;
  parameters: Record<string, Json>;
  conditions: Record<string, Json>;
  functions: Record<string, FunctionSpec>;
  resources: Record<string, Json>;
  outputs: Record<string, Json>;
}

export interface FunctionSpec {
  binary: string;
  runtime: string;
  architectures: string[];
  handler: string;
  description: string;
  memorySize: number;
  timeout: number;
  environment: Record<string, Json>;
  loggingConfig: Json;
  /** A plain async dead-letter queue (absent: failures go to the EventInvokeConfig's OnFailure destination). */
  deadLetterTargetArn?: Json;
  /** The template condition the function (with its role and policy) exists under, if any. */
  condition?: string;
  statements: Json[];
  checkovSkips: Json[];
}

/** infra/ — found by walking up from this file (works from lib/ with ts-node and from dist/lib/). */
export function infraDir(start: string = __dirname): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'loop.json')) && fs.existsSync(path.join(dir, 'template.yaml'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`infra/loop.json not found above ${start}`);
    dir = up;
  }
}

export function loadSpec(file: string = path.join(infraDir(), 'loop.json')): LoopSpec {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as LoopSpec;
}

const PARAMETER_PROPS: Record<string, string> = {
  Type: 'type', Default: 'default', AllowedPattern: 'allowedPattern', AllowedValues: 'allowedValues',
  Description: 'description', MinValue: 'minValue', MaxValue: 'maxValue', ConstraintDescription: 'constraintDescription',
  MinLength: 'minLength', MaxLength: 'maxLength', NoEcho: 'noEcho',
};

export interface LoopStackProps extends StackProps {
  spec?: LoopSpec;
  /** The Cargo workspace manifest (default: the repository's Cargo.toml). */
  manifestPath?: string;
}

export class LoopStack extends Stack {
  constructor(scope: Construct, id: string, props: LoopStackProps = {}) {
    const spec = props.spec ?? loadSpec();
    super(scope, id, { description: spec.description, ...props });
    const manifestPath = props.manifestPath ?? path.join(infraDir(), '..', 'Cargo.toml');

    for (const [name, p] of Object.entries(spec.parameters)) {
      const cdkProps: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(p)) {
        if (!(k in PARAMETER_PROPS)) throw new Error(`parameter ${name}: unsupported property ${k}`);
        cdkProps[PARAMETER_PROPS[k]] = v;
      }
      new CfnParameter(this, name, cdkProps);
    }

    const conditions: Record<string, CfnCondition> = {};
    for (const [name, expression] of Object.entries(spec.conditions)) {
      conditions[name] = new CfnCondition(this, name, { expression: expression as Json });
    }

    for (const [logicalId, r] of Object.entries(spec.resources)) {
      const res = new CfnResource(this, logicalId, { type: r.Type, properties: r.Properties });
      res.overrideLogicalId(logicalId);
      if (r.Condition) res.cfnOptions.condition = conditions[r.Condition];
      if (r.DeletionPolicy) res.cfnOptions.deletionPolicy = r.DeletionPolicy as CfnDeletionPolicy;
      if (r.UpdateReplacePolicy) res.cfnOptions.updateReplacePolicy = r.UpdateReplacePolicy as CfnDeletionPolicy;
      for (const [k, v] of Object.entries(r.Metadata ?? {})) res.addMetadata(k, v);
      for (const k of Object.keys(r)) {
        if (!['Type', 'Properties', 'Condition', 'DeletionPolicy', 'UpdateReplacePolicy', 'Metadata'].includes(k)) {
          throw new Error(`resource ${logicalId}: unsupported attribute ${k}`);
        }
      }
    }

    for (const [logicalId, f] of Object.entries(spec.functions)) {
      if (f.architectures.length !== 1 || f.architectures[0] !== 'arm64') throw new Error(`${logicalId}: arm64 only`);
      const fn = new RustFunction(this, logicalId, {
        manifestPath,
        binaryName: f.binary,
        architecture: Architecture.ARM_64,
        memorySize: f.memorySize,
        timeout: Duration.seconds(f.timeout),
        description: f.description,
      });
      const cfnFn = fn.node.defaultChild as CfnFunction;
      cfnFn.overrideLogicalId(logicalId);
      cfnFn.addPropertyOverride('Runtime', f.runtime);
      cfnFn.addPropertyOverride('Handler', f.handler);
      cfnFn.addPropertyOverride('Environment', { Variables: f.environment });
      cfnFn.addPropertyOverride('LoggingConfig', f.loggingConfig);
      if (f.deadLetterTargetArn !== undefined) cfnFn.addPropertyOverride('DeadLetterConfig', { TargetArn: f.deadLetterTargetArn });
      if (f.checkovSkips.length) cfnFn.addMetadata('checkov', { skip: f.checkovSkips });

      // The role keeps SAM's logical id; its policy has the spec's statements (the OnFailure
      // destination's grant among them) plus the dead-letter grant SAM adds for a DeadLetterQueue.
      const roleId = `${logicalId}Role`;
      (fn.role!.node.defaultChild as CfnRole).overrideLogicalId(roleId);
      const policy = new CfnResource(this, `${logicalId}RolePolicy`, {
        type: 'AWS::IAM::Policy',
        properties: {
          PolicyName: `${logicalId}RolePolicy`,
          Roles: [{ Ref: roleId }],
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              ...f.statements,
              ...(f.deadLetterTargetArn !== undefined
                ? [{ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: f.deadLetterTargetArn }] : []),
            ],
          },
        },
      });
      policy.overrideLogicalId(`${logicalId}RolePolicy`);
      // Lambda checks the dead-letter grant when it creates the function (and the destination grant
      // when it creates the EventInvokeConfig, which refers to the function): wait for the policy. (The
      // role dependency is implied by the GetAtt; an explicit one is cfn-lint W3005.)
      cfnFn.addOverride('DependsOn', [policy.logicalId]);
      if (f.condition) {
        const condition = conditions[f.condition];
        cfnFn.cfnOptions.condition = condition;
        (fn.role!.node.defaultChild as CfnRole).cfnOptions.condition = condition;
        policy.cfnOptions.condition = condition;
      }
    }

    // CDK's template validation resolves a Ref to the parameter's default even inside the branch
    // of an Fn::If that only runs when the parameter is set (MetricsNamespace, ProductionEndpointName
    // default to ""); cfn-lint, which is condition-aware, checks these properly.
    Validations.of(this).acknowledge({
      id: 'CloudFormation-Validate::W1030',
      reason: 'optional parameters are used only under their conditions (cfn-lint checks the template condition-aware)',
    });

    // Outputs may share a parameter's name (CloudFormation keeps them apart; constructs do not).
    const outputs = new Construct(this, 'Outputs');
    for (const [name, o] of Object.entries(spec.outputs)) {
      new CfnOutput(outputs, name, {
        value: Token.asString(o.Value),
        description: o.Description,
        condition: o.Condition ? conditions[o.Condition] : undefined,
      }).overrideLogicalId(name);
    }
  }
}
